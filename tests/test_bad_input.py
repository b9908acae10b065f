"""The bad-input battery: bad files, values, configs, paths and runs, tried as a user would.

Every case runs the command line in this process and checks: the exit status; one clear
sentence naming the file and line, utterance or path; no traceback; and that every file that
existed before is byte-identical after (nothing lost, nothing half-written). Cases that must
succeed (a byte-order mark, a truncated WAV) check the warning and the result instead.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from speecheq.cli.main import main
from speecheq.data.datadir import DataDir
from speecheq.data.folds import save_folds, split_folds
from speecheq.fileio import read_table
from tests.synthetic import TINY, one_thread, speech, write_audio_data  # noqa: F401

RATE = 16000
EMOTIONS = ("neutral", "happy", "angry", "sad")


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *args: object) -> Outcome:
    """``speecheq ARGS`` in this process, as its console script runs it."""
    capsys.readouterr()
    argv = sys.argv
    sys.argv = ["speecheq", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


Setup = Callable[[Path, Path], list[object]]
"""Given a fresh folder and the trained folder, write the case's inputs; return the arguments."""


def _data(tmp: Path) -> Path:
    return write_audio_data(tmp)


def _edit(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.write_bytes(text.encode(encoding))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def case_malformed_line(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    lines = _lines(data / "wav.scp")
    _edit(data / "wav.scp", "\n".join([lines[0], "spk1-orphan", *lines[1:]]) + "\n")
    return ["data", "validate", data]


def case_empty_wav_scp(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _edit(data / "wav.scp", "")
    _edit(data / "utt2spk", "")
    return ["data", "validate", data]


def case_unknown_label(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _edit(data / "utt2emo", (data / "utt2emo").read_text().replace("happy", "joyful"))
    return ["data", "validate", data]


def case_non_finite_avd(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _edit(data / "utt2avd", "spk1-angry nan 1 1\n")
    return ["data", "validate", data]


def case_gb18030_table(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _edit(data / "text", "spk1-angry 就是下雨也去\n", "gb18030")
    return ["data", "fix", data, "--out", tmp / "fixed"]


def case_bom_fix(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _edit(data / "utt2spk", "\ufeff" + (data / "utt2spk").read_text())
    return ["data", "fix", data, "--out", tmp / "fixed"]


def case_split_onto_source(tmp: Path, _: Path) -> list[object]:
    return ["data", "split", _data(tmp), tmp / "data"]


def case_split_onto_parent(tmp: Path, _: Path) -> list[object]:
    return ["data", "split", _data(tmp), tmp]


def case_split_over_foreign_files(tmp: Path, _: Path) -> list[object]:
    (tmp / "folds").mkdir()
    _edit(tmp / "folds" / "notes.txt", "mine\n")
    return ["data", "split", _data(tmp), tmp / "folds"]


def case_subset_onto_source(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    return ["data", "subset", data, data, "--speakers", "spk1"]


def case_subset_inside_source(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    return ["data", "subset", data, data / "spk1", "--speakers", "spk1"]


def case_combine_onto_source(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    return ["data", "combine", data, data]


def case_unknown_speaker(tmp: Path, _: Path) -> list[object]:
    return ["data", "subset", _data(tmp), tmp / "out", "--speakers", "spk9"]


def case_bad_valid_fraction(tmp: Path, _: Path) -> list[object]:
    return ["data", "split", _data(tmp), tmp / "folds", "--valid-fraction", "1.5"]


def case_unknown_valid_by(tmp: Path, _: Path) -> list[object]:
    return ["data", "split", _data(tmp), tmp / "folds", "--valid-by", "voice"]


def case_valid_speakers_of_random_folds(tmp: Path, _: Path) -> list[object]:
    return ["data", "split", _data(tmp), tmp / "folds", "--by", "random", "--valid-by", "speaker"]


def case_data_dir_is_a_file(tmp: Path, _: Path) -> list[object]:
    _edit(tmp / "data", "not a folder\n")
    return ["data", "validate", tmp / "data"]


def _wav(data: Path, utt: str) -> Path:
    return Path(read_table(data / "wav.scp")[utt])


def case_nan_audio(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    samples = speech(1.0, 0)
    samples[100] = np.nan
    soundfile.write(_wav(data, "spk1-happy"), samples, RATE, subtype="FLOAT")
    return ["feats", data]


def case_missing_audio(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _wav(data, "spk2-sad").unlink()
    return ["feats", data]


def case_corrupt_audio(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _wav(data, "spk1-sad").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + os.urandom(64))
    return ["feats", data]


def case_empty_audio(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    soundfile.write(_wav(data, "spk2-neutral"), np.zeros(0, dtype=np.float32), RATE)
    return ["feats", data]


def case_truncated_wav(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    wav = _wav(data, "spk1-angry")
    wav.write_bytes(wav.read_bytes()[:20000])
    return ["feats", data, "--nj", "1"]


def case_bad_feature_conf(tmp: Path, _: Path) -> list[object]:
    _edit(tmp / "fbank.conf", "--num-mel-bins=40\n--num-mel-bin=40\n")
    return ["feats", _data(tmp), "--conf", tmp / "fbank.conf"]


def case_feature_conf_is_a_folder(tmp: Path, _: Path) -> list[object]:
    (tmp / "conf").mkdir()
    return ["feats", _data(tmp), "--conf", tmp / "conf"]


def case_zero_jobs(tmp: Path, _: Path) -> list[object]:
    return ["feats", _data(tmp), "--nj", "0"]


def _train_args(trained: Path, tmp: Path, config: Path | None = None) -> list[object]:
    data = trained / "data"
    return ["train", "--config", config or trained / "train.yaml", "--train-dir", data,
            "--valid-dir", data, "--exp-dir", tmp / "exp", "--device", "cpu"]  # fmt: skip


def _config(tmp: Path, text: str) -> Path:
    _edit(tmp / "train.yaml", text)
    return tmp / "train.yaml"


def case_config_is_a_folder(tmp: Path, trained: Path) -> list[object]:
    return _train_args(trained, tmp, tmp)


def case_huge_learning_rate(tmp: Path, trained: Path) -> list[object]:
    return _train_args(trained, tmp, _config(tmp, "optim: {lr: 1.0e+3}\n"))


def case_nan_learning_rate(tmp: Path, trained: Path) -> list[object]:
    return _train_args(trained, tmp, _config(tmp, "optim: {lr: .nan}\n"))


def case_one_class(tmp: Path, trained: Path) -> list[object]:
    return _train_args(trained, tmp, _config(tmp, "labels: {classes: [happy]}\n"))


def case_task_twice(tmp: Path, trained: Path) -> list[object]:
    return _train_args(trained, tmp, _config(tmp, "tasks:\n  emotion: {}\n  emotion: {}\n"))


def case_tasks_option_twice(tmp: Path, trained: Path) -> list[object]:
    return [*_train_args(trained, tmp), "--tasks", "emotion,emotion"]


def case_class_not_in_training(tmp: Path, trained: Path) -> list[object]:
    config = {**TINY, "optim": {**TINY["optim"], "epochs": 1}, "tasks": {"emotion": {}}}
    config["labels"] = {"classes": ["neutral", "happy", "surprise"]}
    return _train_args(trained, tmp, _config(tmp, yaml.safe_dump(config)))


def case_unknown_config_key(tmp: Path, trained: Path) -> list[object]:
    return _train_args(trained, tmp, _config(tmp, "optim: {rate: 0.1}\n"))


def case_bad_override(tmp: Path, trained: Path) -> list[object]:
    return [*_train_args(trained, tmp), "--set", "optim.lr"]


def case_bad_resume(tmp: Path, trained: Path) -> list[object]:
    return [*_train_args(trained, tmp), "--resume", "yes"]


def case_no_features(tmp: Path, trained: Path) -> list[object]:
    data = _data(tmp)
    return ["train", "--config", trained / "train.yaml", "--train-dir", data,
            "--valid-dir", data, "--exp-dir", tmp / "exp"]  # fmt: skip


def case_resume_on_other_data(tmp: Path, trained: Path) -> list[object]:
    subset = DataDir.load(trained / "data").subset([f"spk1-{e}" for e in EMOTIONS])
    subset.save(tmp / "other")
    args = _train_args(trained, tmp)
    args[args.index("--exp-dir") + 1] = trained / "exp"
    args[args.index("--train-dir") + 1] = tmp / "other"
    return args


def case_exp_dir_under_a_file(tmp: Path, trained: Path) -> list[object]:
    _edit(tmp / "afile", "x\n")
    args = _train_args(trained, tmp)
    args[args.index("--exp-dir") + 1] = tmp / "afile" / "exp"
    return args


def case_a_wav_as_model(tmp: Path, trained: Path) -> list[object]:
    wav = next((trained / "wav").glob("*.wav"))
    return ["predict", wav, trained / "data", tmp / "decode"]


def case_truncated_model(tmp: Path, trained: Path) -> list[object]:
    data = (trained / "exp" / "model.pt").read_bytes()
    (tmp / "model.pt").write_bytes(data[: len(data) // 2])
    return ["predict", tmp / "model.pt", trained / "data", tmp / "decode"]


def case_model_that_does_not_fit(tmp: Path, trained: Path) -> list[object]:
    import torch

    payload = torch.load(trained / "exp" / "model.pt", weights_only=True)
    payload["config"]["model"]["d_model"] = 64
    torch.save(payload, tmp / "model.pt")
    return ["predict", tmp / "model.pt", trained / "data", tmp / "decode"]


def case_missing_model(tmp: Path, trained: Path) -> list[object]:
    return ["predict", tmp / "none.pt", trained / "data", tmp / "decode"]


def case_decode_under_a_file(tmp: Path, trained: Path) -> list[object]:
    _edit(tmp / "afile", "x\n")
    return ["predict", trained / "exp" / "model.pt", trained / "data", tmp / "afile" / "d"]


def case_score_without_hyp(tmp: Path, _: Path) -> list[object]:
    (tmp / "decode" / "ref").mkdir(parents=True)
    return ["score", tmp / "decode"]


def case_score_unknown_class(tmp: Path, _: Path) -> list[object]:
    for side, value in (("ref", "happy"), ("hyp", "joyful")):
        (tmp / "d" / side).mkdir(parents=True)
        _edit(tmp / "d" / side / "utt2emo", f"u1 {value}\n")
    _edit(tmp / "d" / "classes", "happy\nsad\n")
    return ["score", tmp / "d"]


def _fusion_systems(tmp: Path, speakers: bool) -> list[Path]:
    """Two systems of two folds, each a decode directory of two utterances with posteriors."""
    for system in ("net", "svm"):
        for fold in ("fold1", "fold2"):
            decode = tmp / system / fold / "decode_test"
            for table, text in (("ref/utt2emo", "u1 happy\nu2 sad\n"),
                                ("hyp/utt2emo", "u1 happy\nu2 happy\n"),
                                ("hyp/utt2emo.post", "u1 0.6 0.4\nu2 0.7 0.3\n"),
                                ("classes", "happy\nsad\n")):  # fmt: skip
                (decode / table).parent.mkdir(parents=True, exist_ok=True)
                _edit(decode / table, text)
            if speakers:
                _edit(decode / "utt2spk", "u1 s1\nu2 s1\n")
    return [tmp / "net", tmp / "svm"]


def case_fuse_without_speakers(tmp: Path, _: Path) -> list[object]:
    return ["exp", "fuse", tmp / "fused", *_fusion_systems(tmp, speakers=False)]


def case_fuse_into_a_system(tmp: Path, _: Path) -> list[object]:
    systems = _fusion_systems(tmp, speakers=True)
    return ["exp", "fuse", systems[0] / "fused", *systems]


def case_infer_missing_file(tmp: Path, trained: Path) -> list[object]:
    return ["infer", trained / "exp" / "model.pt", tmp / "none.wav"]


def case_infer_corrupt_file(tmp: Path, trained: Path) -> list[object]:
    soundfile.write(tmp / "good.wav", speech(1.0, 1), RATE)
    (tmp / "bad.wav").write_bytes(b"RIFF....WAVEnothing")
    return ["infer", trained / "exp" / "model.pt", tmp / "good.wav", tmp / "bad.wav",
            "--json", tmp / "out.json"]  # fmt: skip


def case_infer_skip_bad(tmp: Path, trained: Path) -> list[object]:
    return [*case_infer_corrupt_file(tmp, trained), "--skip-bad"]


def case_infer_nan_audio(tmp: Path, trained: Path) -> list[object]:
    samples = speech(1.0, 2)
    samples[10:20] = np.inf
    soundfile.write(tmp / "inf.wav", samples, RATE, subtype="FLOAT")
    return ["infer", trained / "exp" / "model.pt", tmp / "inf.wav", "--json", tmp / "out.json"]


def case_unknown_corpus(tmp: Path, _: Path) -> list[object]:
    return ["prepare", "casya", tmp / "data", "--corpus-dir", tmp]


def case_corpus_not_laid_out(tmp: Path, _: Path) -> list[object]:
    (tmp / "casia").mkdir()
    return ["prepare", "casia", tmp / "data", "--corpus-dir", tmp / "casia"]


def case_plan_missing(tmp: Path, _: Path) -> list[object]:
    return ["exp", "train", tmp]


def case_folds_missing(tmp: Path, trained: Path) -> list[object]:
    return ["exp", "folds", tmp / "folds", tmp / "exp", "--config", trained / "train.yaml"]


def case_unknown_functionals(tmp: Path, _: Path) -> list[object]:
    return ["baseline", "functionals", _data(tmp), tmp / "func", "--set", "mfcc"]


def case_functionals_of_missing_audio(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _wav(data, "spk2-sad").unlink()
    return ["baseline", "functionals", data, tmp / "func"]


def case_svm_without_functionals(tmp: Path, trained: Path) -> list[object]:
    data = _data(tmp)
    save_folds(split_folds(DataDir.load(data), valid_fraction=0.5), tmp / "folds")
    (tmp / "func").mkdir()
    _edit(tmp / "func" / "functionals.scp", "spk1-happy x.ark:1\n")
    return ["baseline", "svm", tmp / "folds", tmp / "svm", "--functionals", tmp / "func",
            "--config", trained / "train.yaml"]  # fmt: skip


def case_fold_table_unknown_speaker(tmp: Path, _: Path) -> list[object]:
    table = tmp / "folds.txt"
    _edit(table, "a spk1\nb spk2 spk3\n")
    return ["data", "split", _data(tmp), tmp / "folds", "--by", "table", "--table", table]


def case_no_valid_set(tmp: Path, _: Path) -> list[object]:
    return ["data", "split", _data(tmp), tmp / "folds", "--valid-fraction", "0"]


def case_zero_per_class(tmp: Path, _: Path) -> list[object]:
    return ["data", "subset", _data(tmp), tmp / "out", "--per-class", "0"]


def case_where_nothing_matches(tmp: Path, _: Path) -> list[object]:
    return ["data", "subset", _data(tmp), tmp / "out", "--where", "utt2emo=joyful"]


def case_num_folds_with_a_fold_table(tmp: Path, _: Path) -> list[object]:
    _edit(tmp / "folds.txt", "a spk1\nb spk2\n")
    return ["data", "split", _data(tmp), tmp / "folds", "--by", "table", "--table",
            tmp / "folds.txt", "--num-folds", "2"]  # fmt: skip


def case_merge_a_trained_class(tmp: Path, trained: Path) -> list[object]:
    text = "labels: {classes: [neutral, happy, angry, sad], merge: {happy: angry}}\n"
    return _train_args(trained, tmp, _config(tmp, text))


def case_too_many_mel_bins(tmp: Path, _: Path) -> list[object]:
    _edit(tmp / "fbank.conf", "--num-mel-bins=400\n")
    return ["feats", _data(tmp), "--conf", tmp / "fbank.conf"]


def case_filterbanks_with_an_upstream(tmp: Path, _: Path) -> list[object]:
    (tmp / "upstream").mkdir()
    return ["feats", _data(tmp), "--type", "fbank", "--upstream", tmp / "upstream"]


def _upstream(tmp: Path) -> Path:
    from tests.upstreams import tiny_upstream

    return tiny_upstream(tmp / "upstreams", "wavlm")


def case_truncated_upstream(tmp: Path, _: Path) -> list[object]:
    weights = _upstream(tmp) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return ["feats", _data(tmp), "--upstream", weights.parent]


def case_upstream_weights_do_not_fit(tmp: Path, _: Path) -> list[object]:
    import json

    upstream = _upstream(tmp)
    config = json.loads((upstream / "config.json").read_text())
    (upstream / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    return ["feats", _data(tmp), "--upstream", upstream]


def case_timelines_of_one_name(tmp: Path, trained: Path) -> list[object]:
    for folder in ("a", "b"):
        (tmp / folder).mkdir()
        soundfile.write(tmp / folder / "call.wav", speech(1.0, 3), RATE)
    return ["infer", trained / "exp" / "model.pt", tmp / "a" / "call.wav", tmp / "b" / "call.wav",
            "--timeline", "--out-dir", tmp / "out"]  # fmt: skip


def case_slurm_without_slurm(tmp: Path, _: Path) -> list[object]:
    return ["exp", "train", tmp / "exp", "--launcher", "slurm"]


def case_feature_jobs_on_slurm_without_slurm(tmp: Path, trained: Path) -> list[object]:
    return ["feats", trained / "data", "--nj", "2", "--launcher", "slurm"]


def case_unknown_launcher(tmp: Path, trained: Path) -> list[object]:
    return ["feats", trained / "data", "--launcher", "lsf"]


def case_svm_with_one_training_speaker(tmp: Path, trained: Path) -> list[object]:
    from speecheq.baseline.functionals import make_functionals

    data = _data(tmp)
    save_folds(split_folds(DataDir.load(data), valid_fraction=0.25), tmp / "folds")
    make_functionals(data, tmp / "func", "fbank")
    return ["baseline", "svm", tmp / "folds", tmp / "svm", "--functionals", tmp / "func",
            "--config", trained / "train.yaml", "--nj", "2"]  # fmt: skip


def case_list_names_a_folder(tmp: Path, trained: Path) -> list[object]:
    (tmp / "calls").mkdir()
    _edit(tmp / "list.txt", "calls\n")
    return ["infer", trained / "exp" / "model.pt", tmp / "list.txt"]


def case_audio_is_a_folder(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    wav = _wav(data, "spk1-sad")
    wav.unlink()
    wav.mkdir()
    return ["feats", data]


def _afile(tmp: Path) -> Path:
    _edit(tmp / "afile", "x\n")
    return tmp / "afile"


def case_json_under_a_file(tmp: Path, trained: Path) -> list[object]:
    wav = next((trained / "wav").glob("*.wav"))
    return ["infer", trained / "exp" / "model.pt", wav, "--json", _afile(tmp) / "out.json"]


def case_export_under_a_file(tmp: Path, trained: Path) -> list[object]:
    return ["export", trained / "exp" / "model.pt", _afile(tmp) / "model.onnx"]


def case_timeline_under_a_file(tmp: Path, trained: Path) -> list[object]:
    wav = next((trained / "wav").glob("*.wav"))
    return ["infer", trained / "exp" / "model.pt", wav, "--timeline", "--out-dir",
            _afile(tmp) / "out"]  # fmt: skip


def case_feature_folder_is_a_file(tmp: Path, _: Path) -> list[object]:
    data = _data(tmp)
    _edit(data / "data", "x\n")
    return ["feats", data]


def case_negative_epochs(tmp: Path, trained: Path) -> list[object]:
    return [*_train_args(trained, tmp), "--set", "optim.epochs=-1"]


def case_predict_an_onnx_file(tmp: Path, trained: Path) -> list[object]:
    _edit(tmp / "model.onnx", "not really\n")
    return ["predict", tmp / "model.onnx", trained / "data", tmp / "decode"]


def case_empty_valid_set(tmp: Path, trained: Path) -> list[object]:
    (tmp / "valid").mkdir()
    for name in ("wav.scp", "utt2spk"):
        _edit(tmp / "valid" / name, "")
    args = _train_args(trained, tmp)
    args[args.index("--valid-dir") + 1] = tmp / "valid"
    return args


def case_stream_a_missing_file(tmp: Path, trained: Path) -> list[object]:
    return ["stream", trained / "exp" / "model.pt", tmp / "call.wav", "--idle", "0.1"]


def case_stream_an_unknown_format(tmp: Path, trained: Path) -> list[object]:
    return ["stream", trained / "exp" / "model.pt", "--format", "mp3"]


def case_stream_a_24_bit_wav(tmp: Path, trained: Path) -> list[object]:
    soundfile.write(tmp / "call.wav", np.zeros(1000), RATE, subtype="PCM_24")
    return ["stream", trained / "exp" / "model.pt", tmp / "call.wav", "--idle", "0.1"]


def case_stream_an_empty_file(tmp: Path, trained: Path) -> list[object]:
    (tmp / "call.raw").write_bytes(b"")
    return ["stream", trained / "exp" / "model.pt", tmp / "call.raw", "--idle", "0.1"]


def case_serve_no_workers(tmp: Path, trained: Path) -> list[object]:
    return ["serve", trained / "exp" / "model.pt", "--workers", "0"]


@dataclass(frozen=True)
class Case:
    setup: Setup
    code: int
    message: str
    """A fragment the error (or warning) must hold, with ``{tmp}`` for the case's folder."""


CASES: dict[str, Case] = {
    "malformed line": Case(case_malformed_line, 1, "wav.scp:2: malformed line 'spk1-orphan'"),
    "empty wav.scp": Case(case_empty_wav_scp, 1, "wav.scp: has no utterances"),
    "unknown label": Case(case_unknown_label, 1, "utt2emo:2: unknown emotion category 'joyful'"),
    "non-finite avd": Case(case_non_finite_avd, 1, "utt2avd:1: expected three finite numbers"),
    "gb18030 table": Case(case_gb18030_table, 1, "{tmp}/data/text: not UTF-8 text"),
    "byte-order mark": Case(case_bom_fix, 0, "utt2spk: starts with a byte-order mark"),
    "split onto its source": Case(case_split_onto_source, 1, "would overwrite the input"),
    "split onto a parent": Case(case_split_onto_parent, 1, "would overwrite the input"),
    "split over other files": Case(case_split_over_foreign_files, 1, "{tmp}/folds: holds files"),
    "subset onto its source": Case(case_subset_onto_source, 1, "would overwrite the input"),
    "subset inside its source": Case(case_subset_inside_source, 1, "would overwrite the input"),
    "combine onto a source": Case(case_combine_onto_source, 1, "would overwrite the input"),
    "unknown speaker": Case(case_unknown_speaker, 1, "speaker(s) not in the data directory: spk9"),
    "valid fraction": Case(case_bad_valid_fraction, 1, "valid fraction must be in (0, 1), got 1.5"),
    "unknown valid-by": Case(case_unknown_valid_by, 1, "--valid-by takes utterance or speaker"),
    "valid speakers of random folds": Case(
        case_valid_speakers_of_random_folds, 1, "a split by random draws its valid set by utterance"
    ),
    "data dir is a file": Case(
        case_data_dir_is_a_file, 1, "{tmp}/data: data directory is a file, not"
    ),
    "nan audio": Case(case_nan_audio, 1, "utterance 'spk1-happy'"),
    "missing audio": Case(case_missing_audio, 1, "utterance 'spk2-sad': audio file"),
    "corrupt audio": Case(case_corrupt_audio, 1, "utterance 'spk1-sad': cannot decode"),
    "empty audio": Case(case_empty_audio, 1, "utterance 'spk2-neutral'"),
    "truncated wav": Case(case_truncated_wav, 0, "spk1-angry.wav' is truncated"),
    "bad feature conf": Case(case_bad_feature_conf, 1, "fbank.conf:2: unknown feature option"),
    "feature conf folder": Case(case_feature_conf_is_a_folder, 1, "{tmp}/conf: "),
    "zero jobs": Case(case_zero_jobs, 2, "Invalid value for '--nj': 0 is not in the range"),
    "config is a folder": Case(case_config_is_a_folder, 1, "is a folder, expected a YAML"),
    "huge learning rate": Case(case_huge_learning_rate, 1, "optim.lr must be in (0, 1]"),
    "nan learning rate": Case(case_nan_learning_rate, 1, "'optim.lr' must be a finite number"),
    "one class": Case(case_one_class, 1, "a classifier needs two classes or more"),
    "task twice": Case(case_task_twice, 1, "train.yaml:3: not valid YAML (the key 'emotion'"),
    "--tasks twice": Case(case_tasks_option_twice, 1, "task 'emotion' is listed twice"),
    "class not in training": Case(case_class_not_in_training, 0, "no utterance of class surprise"),
    "unknown config key": Case(case_unknown_config_key, 1, "unknown key 'optim.rate'"),
    "bad override": Case(case_bad_override, 1, "--set 'optim.lr': expected KEY=VALUE"),
    "bad resume": Case(case_bad_resume, 1, "--resume must be auto, true or false, got 'yes'"),
    "no features": Case(case_no_features, 1, "{tmp}/data: feats.scp is missing"),
    "resume on other data": Case(case_resume_on_other_data, 1, "other train data than this run"),
    "exp dir under a file": Case(
        case_exp_dir_under_a_file, 1, "{tmp}/afile/exp: cannot write it: {tmp}/afile is a file"
    ),
    "a wav as model": Case(case_a_wav_as_model, 1, "cannot read this model file"),
    "truncated model": Case(case_truncated_model, 1, "{tmp}/model.pt: cannot read this model"),
    "model not fitting": Case(case_model_that_does_not_fit, 1, "do not fit its config"),
    "missing model": Case(case_missing_model, 1, "{tmp}/none.pt: model file does not exist"),
    "decode under a file": Case(case_decode_under_a_file, 1, "{tmp}/afile/d/hyp/"),
    "score without hyp": Case(case_score_without_hyp, 1, "no 'hyp' folder"),
    "fuse without speakers": Case(
        case_fuse_without_speakers,
        1,
        "{tmp}/net/fold1/decode_test: utterance 'u1' has no speaker in utt2spk",
    ),
    "fuse into a system": Case(
        case_fuse_into_a_system, 1, "{tmp}/net/fused: the output would overwrite the input"
    ),
    "score unknown class": Case(
        case_score_unknown_class, 1, "hyp/utt2emo:1: 'joyful' is not one of the"
    ),
    "infer missing file": Case(case_infer_missing_file, 1, "{tmp}/none.wav: no such file"),
    "infer corrupt file": Case(case_infer_corrupt_file, 1, "{tmp}/bad.wav' ("),
    "infer --skip-bad": Case(case_infer_skip_bad, 0, "1 file(s) skipped"),
    "infer infinite audio": Case(case_infer_nan_audio, 1, "inf.wav' has 10 samples that are not"),
    "unknown corpus": Case(case_unknown_corpus, 1, "unknown corpus 'casya'"),
    "corpus not laid out": Case(case_corpus_not_laid_out, 1, "no casia corpus found"),
    "plan missing": Case(case_plan_missing, 1, "plan.json: no plan here"),
    "folds missing": Case(case_folds_missing, 1, "{tmp}/folds: no folds here"),
    "unknown functionals": Case(case_unknown_functionals, 1, "unknown functionals set 'mfcc'"),
    "functionals, missing audio": Case(
        case_functionals_of_missing_audio, 1, "utterance 'spk2-sad': audio file"
    ),
    "svm without functionals": Case(
        case_svm_without_functionals, 1, "{tmp}/func/functionals.scp: no functionals for"
    ),
    "fold table, unknown speaker": Case(
        case_fold_table_unknown_speaker, 1, "folds.txt:2: speaker 'spk3' is not in the data"
    ),
    "no valid set": Case(case_no_valid_set, 1, "the valid fraction must be in (0, 1), got 0"),
    "zero per class": Case(case_zero_per_class, 1, "--per-class must be at least 1, got 0"),
    "where nothing matches": Case(
        case_where_nothing_matches, 1, "no line of utt2emo has the value 'joyful'"
    ),
    "--num-folds with a table": Case(
        case_num_folds_with_a_fold_table, 1, "--num-folds applies to speaker and random splits"
    ),
    "merge of a trained class": Case(
        case_merge_a_trained_class, 1, "'happy -> angry' merges a class that is also in the"
    ),
    "too many mel bins": Case(case_too_many_mel_bins, 1, "--num-mel-bins=400 is too many for a"),
    "fbank with an upstream": Case(
        case_filterbanks_with_an_upstream, 1, "--upstream is for --type ssl"
    ),
    "truncated upstream": Case(
        case_truncated_upstream, 1, "{tmp}/upstreams/wavlm: its weights are damaged or truncated"
    ),
    "upstream weights misfit": Case(
        case_upstream_weights_do_not_fit, 1, "wavlm: the weights do not fit config.json:"
    ),
    "timelines of one name": Case(
        case_timelines_of_one_name, 1, "{tmp}/a/call.wav and {tmp}/b/call.wav would both write"
    ),
    "slurm without slurm": Case(case_slurm_without_slurm, 1, "--launcher slurm: no Slurm cluster"),
    "feature jobs on slurm without slurm": Case(
        case_feature_jobs_on_slurm_without_slurm, 1, "--launcher slurm: no Slurm cluster"
    ),
    "unknown launcher": Case(
        case_unknown_launcher, 1, "--launcher must be local, slurm or slurm-local, got 'lsf'"
    ),
    "svm, one training speaker": Case(
        case_svm_with_one_training_speaker, 1, "one training speaker, and class"
    ),
    "list names a folder": Case(
        case_list_names_a_folder, 1, "list.txt:1: audio file 'calls' is a folder, not a file"
    ),
    "audio is a folder": Case(case_audio_is_a_folder, 1, "spk1-sad.wav' is a folder, not a file"),
    "json under a file": Case(
        case_json_under_a_file, 1, "out.json: cannot write it: {tmp}/afile is a file, not a"
    ),
    "export under a file": Case(
        case_export_under_a_file, 1, "model.onnx: cannot write it: {tmp}/afile is a file, not"
    ),
    "timeline under a file": Case(
        case_timeline_under_a_file, 1, "cannot write it: {tmp}/afile is a file, not a folder"
    ),
    "feature folder is a file": Case(
        case_feature_folder_is_a_file, 1, "data/data: cannot write it: it is a file, not a"
    ),
    "negative epochs": Case(case_negative_epochs, 1, "optim.epochs must be at least 1, got -1"),
    "predict an onnx file": Case(case_predict_an_onnx_file, 1, "model.onnx: an exported model;"),
    "empty valid set": Case(case_empty_valid_set, 1, "{tmp}/valid: the data directory has no utt"),
    "stream a missing file": Case(
        case_stream_a_missing_file, 1, "{tmp}/call.wav: cannot read it (No such file"
    ),
    "stream an unknown format": Case(
        case_stream_an_unknown_format, 1, "--format must be one of s16le, f32le, got 'mp3'"
    ),
    "stream a 24-bit wav": Case(
        case_stream_a_24_bit_wav, 1, "call.wav: only 16-bit PCM or 32-bit float WAV files"
    ),
    "stream an empty file": Case(case_stream_an_empty_file, 1, "call.raw: no audio arrived"),
    "serve no workers": Case(case_serve_no_workers, 1, "--workers and --streams must be positive"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_ends_in_one_clear_sentence_and_loses_nothing(
    name: str,
    audio_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    args = case.setup(tmp_path, audio_model)
    before = {**snapshot(tmp_path), **snapshot(audio_model)}
    outcome = run(capsys, *args)
    shown = outcome.err + outcome.out
    assert outcome.code == case.code, shown
    assert "Traceback" not in shown
    assert case.message.format(tmp=tmp_path) in " ".join(shown.split()), shown
    if case.code == 1:
        errors = [line for line in outcome.err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, outcome.err  # one sentence
    changed = [p for p, data in before.items() if not p.is_file() or p.read_bytes() != data]
    assert not changed, changed


@pytest.mark.parametrize("command", ["fix", "perturb"])
def test_a_full_disk_names_the_file_and_keeps_what_was_there(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = write_audio_data(tmp_path)
    if command == "fix":  # it must drop an utterance to write anything
        utt2spk = (data / "utt2spk").read_text().splitlines(keepends=True)
        (data / "utt2spk").write_text("".join(utt2spk[1:]))
    before = snapshot(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    args = [data] if command == "fix" else [data, tmp_path / "sp", "--speeds", "0.9"]
    outcome = run(capsys, "data", command, *args)
    assert outcome.code == 1 and "Traceback" not in outcome.err
    written = data if command == "fix" else tmp_path / "sp"
    assert f"{written}/" in outcome.err and "No space left on device" in outcome.err
    assert snapshot(tmp_path) == before


def test_the_byte_order_mark_keeps_the_first_utterance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = case_bom_fix(tmp_path, tmp_path)
    assert run(capsys, *args).code == 0
    assert len(read_table(tmp_path / "fixed" / "utt2spk")) == 8


def test_files_follow_the_umask(tmp_path: Path) -> None:
    data = write_audio_data(tmp_path)
    assert (data / "utt2spk").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_folder_scan_finds_every_format_the_reader_decodes(tmp_path: Path) -> None:
    from speecheq.inference.inputs import audio_inputs

    for name, subtype in (("a.flac", "PCM_16"), ("b.ogg", "VORBIS"), ("c.WAV", "PCM_16")):
        soundfile.write(tmp_path / name, speech(0.5, 0), RATE, subtype=subtype)
    (tmp_path / "notes.txt").write_text("not audio")
    assert [Path(name).name for name, _ in audio_inputs([tmp_path])] == ["a.flac", "b.ogg", "c.WAV"]
