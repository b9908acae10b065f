"""Inference on raw audio: the Recognizer (arrays, files, threads), the command line (batches,
inputs, typed values, identity), long recordings as a timeline, and ONNX/TorchScript exports."""

from __future__ import annotations

import csv
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from speecheq import Recognizer
from speecheq.cli.main import app
from speecheq.errors import SpeechEQError
from speecheq.experiments.release import model_card
from speecheq.fileio import read_table
from speecheq.inference import TimelineOptions, timeline_of
from speecheq.inference.export import export_model
from speecheq.modelfile import load_model, save_ensemble
from speecheq.predict import predict
from tests.conftest import CASIA_HELD_OUT, CORPORA, corpus_dir
from tests.synthetic import RATE, one_thread, speech  # noqa: F401

README = Path(__file__).resolve().parents[1] / "README.md"
MIN_TIMELINE_SHARE = 0.25
"""The least share of the recording's speech labelled with its clip's emotion: the
``casia_model`` at seeds 0, 1, 2 measured 0.44, 0.35, 0.33 (with the phone head on the encoder
output: 0.34, 0.39, 0.39), less a margin (chance: about 1/6)."""


def invoke(*args: object) -> str:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_recognizer_matches_predict_on_the_same_audio(audio_model: Path, tmp_path: Path) -> None:
    model, data = audio_model / "exp" / "model.pt", audio_model / "data"
    predict(model, data, tmp_path / "decode", device="cpu")
    posteriors = read_table(tmp_path / "decode" / "hyp" / "utt2emo.post")
    rec = Recognizer.load(model, tasks=["emotion", "intensity", "gender"])
    for utt, wav in read_table(data / "wav.scp").items():
        from_file = rec.predict_file(wav)
        samples, rate = soundfile.read(wav, dtype="float32")
        from_array = rec.predict(samples, rate)
        expected = [float(p) for p in posteriors[utt].split()]
        assert list(from_file.posteriors.values()) == pytest.approx(expected, abs=1e-4)
        assert from_array == from_file
        pcm, _ = soundfile.read(wav, dtype="int16")  # integer PCM is scaled, as readers do
        assert rec.predict(pcm, rate).posteriors == pytest.approx(from_file.posteriors, abs=1e-6)
        assert isinstance(from_file.values["intensity"], int)  # typed, not "2"
        assert from_file.values["gender"] in ("m", "f")


def test_the_recognizer_says_what_a_path_is(audio_model: Path, tmp_path: Path) -> None:
    rec = Recognizer.load(audio_model / "exp" / "model.pt")
    with pytest.raises(SpeechEQError, match="is a folder, not a file"):
        rec.predict_file(tmp_path)
    with pytest.raises(SpeechEQError, match="none.wav' does not exist"):
        timeline_of(rec, tmp_path / "none.wav")
    with pytest.raises(SpeechEQError, match="samples of type bool are not audio"):
        rec.predict(np.ones(16000, dtype=bool), RATE)


def test_default_tasks_are_the_emotion_tasks_and_threads_agree(audio_model: Path) -> None:
    rec = Recognizer.load(audio_model / "exp" / "model.pt")
    assert [task.name for task in rec.tasks] == ["emotion", "intensity"]  # not gender
    clips = [speech(1.0 + 0.25 * i, i) for i in range(8)]
    alone = [rec.predict(clip, RATE) for clip in clips]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda clip: rec.predict(clip, RATE), clips))
    assert together == alone
    identity = rec.identity
    assert identity["classes"] == ["neutral", "happy", "angry", "sad"]
    assert len(identity["sha256"]) == 16 and identity["trained_on"]["fingerprint"]


def test_infer_command_reads_files_folders_wav_scp_and_lists(
    audio_model: Path, tmp_path: Path
) -> None:
    model, wav = audio_model / "exp" / "model.pt", audio_model / "wav"
    files = sorted(wav.glob("*.wav"))
    (tmp_path / "list.txt").write_text(f"# two clips\n{files[0]}\n{files[1]}\n")
    output = invoke(
        "infer", model, wav, audio_model / "data" / "wav.scp", tmp_path / "list.txt",
        "--tasks", "emotion,gender", "--json", tmp_path / "out.json", "--csv", tmp_path / "out.csv",
    )  # fmt: skip
    assert "confidence" in output
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["model"]["classes"] == ["neutral", "happy", "angry", "sad"]
    results = written["results"]
    assert len(results) == 8 + 8 + 2
    assert set(results[0]) == {"file", "emotion", "gender", "posteriors"}
    assert {r["file"] for r in results} >= {"spk1-happy", str(files[0])}  # wav.scp ids, paths
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].startswith("# model: ") and lines[2].startswith("# classes: ")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == 18 and float(rows[0]["p_happy"]) >= 0


def test_utt2spk_normalises_each_speakers_inputs_as_their_data_directory_is_scored(
    audio_model: Path, tmp_path: Path
) -> None:
    """A model with per-speaker CMVN: with --utt2spk, infer gives the posteriors that decoding
    the data directory gives (each speaker's statistics); without it, each file's own."""
    import yaml

    from speecheq.config import config_from_dict
    from speecheq.train import train

    data = audio_model / "data"
    config = yaml.safe_load((audio_model / "train.yaml").read_text())
    config["features"]["cmvn"] = "speaker"
    train(config_from_dict(config, "test"), data, data, tmp_path / "exp")
    model = tmp_path / "exp" / "model.pt"
    predict(model, data, tmp_path / "decode", device="cpu")
    scored = read_table(tmp_path / "decode" / "hyp" / "utt2emo.post")
    wav_scp, utt2spk = data / "wav.scp", data / "utt2spk"
    invoke("infer", model, wav_scp, "--utt2spk", utt2spk, "--csv", tmp_path / "spk.csv")
    invoke("infer", model, wav_scp, "--csv", tmp_path / "own.csv")

    def posteriors(path: Path) -> dict[str, list[float]]:
        lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
        rows = csv.DictReader(lines)
        return {
            row["file"]: [float(v) for k, v in row.items() if k.startswith("p_")] for row in rows
        }

    by_speaker, own = posteriors(tmp_path / "spk.csv"), posteriors(tmp_path / "own.csv")
    assert set(by_speaker) == set(scored)
    for utt, values in scored.items():
        assert by_speaker[utt] == pytest.approx([float(v) for v in values.split()], abs=1e-3)
    assert any(own[utt] != by_speaker[utt] for utt in own)  # (4 decimals written)
    rec = Recognizer.load(model)  # a lone clip: the training speakers' pooled statistics
    samples, rate = soundfile.read(read_table(wav_scp)["spk1-happy"], dtype="float32")
    pooled = load_model(model).cmvn.global_stats
    given = next(iter(rec.predict_many([("clip", rec.features(samples, rate, "clip"))], pooled)))
    assert rec.predict(samples, rate).posteriors == pytest.approx(given[1].posteriors)
    with pytest.raises(SpeechEQError, match="utterance 'clip': no speaker given"):
        list(rec.predict_speakers([("clip", rec.features(samples, rate, "clip"))], {}))
    assert "--utt2spk utt2spk" in model_card(model, data, ["mini"], [], [1])  # its limit, said
    (tmp_path / "utt2spk").write_text("spk1-happy spk1\n")
    result = CliRunner().invoke(
        app, ["infer", str(model), str(wav_scp), "--utt2spk", str(tmp_path / "utt2spk")]
    )
    assert isinstance(result.exception, SpeechEQError)
    assert re.search(r"utt2spk: no speaker for input '\S+' \(and 6 more\)", str(result.exception))


def long_recording(
    path: Path, speaker: str, emotions: list[str], first: int = 211
) -> list[tuple[float, float]]:
    """CASIA utterances of ``emotions`` (sentences ``first``, ``first + 1``...), trimmed to their
    speech, 1.5 s of silence apart; returns where each one's speech is."""
    parts, truth, at = [np.zeros(RATE, np.float32)], [], 1.0
    for index, emotion in enumerate(emotions):
        samples, _ = soundfile.read(
            corpus_dir("casia") / speaker / emotion / f"{first + index}.wav", dtype="float32"
        )
        frames = np.abs(samples[: len(samples) // 160 * 160]).reshape(-1, 160).max(axis=1)
        loud = np.flatnonzero(frames > 0.05 * frames.max())
        samples = samples[loud[0] * 160 : (loud[-1] + 1) * 160]
        truth.append((at, at + len(samples) / RATE))
        parts += [samples, np.zeros(int(1.5 * RATE), np.float32)]
        at += len(samples) / RATE + 1.5
    soundfile.write(path, np.concatenate(parts), RATE, subtype="PCM_16")
    return truth


@pytest.mark.corpora
@pytest.mark.slow
def test_timeline_finds_the_speech_of_a_long_recording_and_labels_it(
    casia_model: Path, tmp_path: Path
) -> None:
    """Twelve clips of the speaker the model never heard, in sentences it never heard either,
    as one recording: the speech is found, and the emotion of most of it is recognised."""
    emotions = ["angry", "sad", "happy", "neutral", "fear", "surprise"] * 2
    truth = long_recording(tmp_path / "call.wav", CASIA_HELD_OUT, emotions, first=226)
    model = casia_model / "exp" / "model.pt"
    rec = Recognizer.load(model)
    timeline = timeline_of(rec, tmp_path / "call.wav", TimelineOptions(min_segment=0.5))
    assert len(timeline.speech) == len(truth)
    for (start, end), (true_start, true_end) in zip(timeline.speech, truth, strict=True):
        assert abs(start - true_start) < 0.3 and abs(end - true_end) < 0.3
    for segment in timeline.segments:  # every segment lies in one stretch of speech
        assert any(s <= segment.start < segment.end <= e for s, e in timeline.speech)
    right = 0.0  # seconds of speech whose segment has the clip's emotion
    for (start, end), emotion in zip(truth, emotions, strict=True):
        for segment in timeline.segments:
            if segment.emotion == emotion:
                right += max(0.0, min(end, segment.end) - max(start, segment.start))
    share = right / sum(end - start for start, end in truth)
    assert share >= MIN_TIMELINE_SHARE, f"{share:.2f} of the speech labelled right"
    out = tmp_path / "out"
    invoke("infer", model, tmp_path / "call.wav", "--timeline", "--out-dir", out, "--plot",
           "--min-segment", "0.5")  # fmt: skip
    written = json.loads((out / "call.json").read_text())
    assert len(written["speech"]) == len(truth)
    assert [s["emotion"] for s in written["segments"]] == [s.emotion for s in timeline.segments]
    segments = read_table(out / "segments")
    assert len(segments) == len(written["segments"]) == len(read_table(out / "utt2emo"))
    assert next(iter(segments.values())).startswith("call ")
    assert (out / "call.png").read_bytes()[:4] == b"\x89PNG"


def test_timeline_merges_short_runs_and_cuts_windows() -> None:
    from speecheq.inference.timeline import cut_windows

    options = TimelineOptions(window=3.0, hop=1.0)
    windows = cut_windows([(0.0, 2.0), (5.0, 10.5)], options)
    assert windows[0] == (0.0, 2.0, 0)
    assert [w[:2] for w in windows[1:]] == [(5.0, 8.0), (6.0, 9.0), (7.0, 10.0), (7.5, 10.5)]
    with pytest.raises(Exception, match="--hop must be in"):
        TimelineOptions(window=1.0, hop=2.0)


def python_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Inference on raw audio")[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_prints_what_it_says(
    audio_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "exp/train/fold1").mkdir(parents=True)
    shutil.copy(audio_model / "exp" / "model.pt", tmp_path / "exp/train/fold1/model.pt")
    soundfile.write(tmp_path / "speech.wav", speech(1.5, 3), RATE)
    recording = [np.zeros(RATE), speech(2.0, 1), np.zeros(RATE), speech(2.0, 2), np.zeros(RATE)]
    soundfile.write(tmp_path / "call.wav", np.concatenate(recording), RATE)
    monkeypatch.chdir(tmp_path)
    exec(compile(python_example(), "README.md", "exec"), {})
    emotion, posteriors, shape, *segments = capsys.readouterr().out.splitlines()
    rec = Recognizer.load(audio_model / "exp" / "model.pt")
    assert emotion == rec.predict_file(tmp_path / "speech.wav").emotion
    shares = eval(posteriors)  # the printed dict of class -> posterior
    assert set(shares) == set(rec.identity["classes"]) and abs(sum(shares.values()) - 1) < 1e-4
    assert shape == f"({rec.embed_file(tmp_path / 'speech.wav').shape[0]},)"
    assert segments and all(re.fullmatch(r"\d+\.\d-\d+\.\d s: \w+", line) for line in segments)


def test_embeddings_are_the_pooled_representation_of_the_forward_pass(
    audio_model: Path, tmp_path: Path
) -> None:
    import kaldiio
    import torch

    from speecheq.modelfile import load_model

    model, wavs = audio_model / "exp" / "model.pt", read_table(audio_model / "data" / "wav.scp")
    invoke("embed", model, audio_model / "data", tmp_path / "emb")
    keys = (tmp_path / "emb" / "keys").read_text().split()
    assert keys == sorted(wavs)  # a data directory's utterance ids, in its wav.scp's order
    rows = np.load(tmp_path / "emb" / "embeddings.npy")
    stored = dict(kaldiio.load_scp(str(tmp_path / "emb" / "embeddings.scp")))
    trained, rec = load_model(model), Recognizer.load(model)
    assert rows.shape == (len(keys), trained.config.model.embedding_dim)
    for row, key in enumerate(keys):
        samples, rate = soundfile.read(wavs[key], dtype="float32")
        feats = torch.from_numpy(rec.cmvn(rec.features(samples, rate, key), None, key))
        with torch.inference_mode():
            own = trained.model.encode(feats[None], torch.tensor([len(feats)])).embedding[0]
        assert np.allclose(rows[row], own.numpy(), atol=1e-4)
        assert np.allclose(stored[key], own.numpy(), atol=1e-4)
        assert np.allclose(rec.embed_file(wavs[key]), own.numpy(), atol=1e-4)
    assert len(set(map(tuple, rows.round(4)))) == len(keys)  # one embedding per utterance


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_export_gives_the_posteriors_of_the_model_file(
    audio_model: Path, tmp_path: Path, fmt: str
) -> None:
    model = audio_model / "exp" / "model.pt"
    exported = export_model(model, tmp_path / ("model.onnx" if fmt == "onnx" else "model.ts"), fmt)
    original, runtime = Recognizer.load(model), Recognizer.load(exported)
    casia = sorted(CORPORA.glob("casia/liuchanhg/*/20[1-3].wav"))
    clips = [soundfile.read(path, dtype="float32")[0] for path in casia]
    clips = clips or [speech(1.0 + i / 3, i) for i in range(6)]
    for clip in clips:
        expected, found = original.predict(clip, RATE), runtime.predict(clip, RATE)
        assert found.values == expected.values
        for name, posterior in expected.posteriors.items():
            assert abs(found.posteriors[name] - posterior) < 1e-4
        assert np.allclose(runtime.embed(clip, RATE), original.embed(clip, RATE), atol=1e-4)
    batched = [
        p
        for _, p in runtime.predict_many(
            [(str(i), original.features(c, RATE, "c")) for i, c in enumerate(clips)]
        )
    ]
    assert [p.values for p in batched] == [original.predict(c, RATE).values for c in clips]
    assert runtime.identity["classes"] == original.identity["classes"]


def test_an_ensemble_runs_as_one_model_with_its_members_mean_posteriors(
    audio_model: Path, tmp_path: Path
) -> None:
    import torch
    import yaml

    from speecheq.config import config_from_dict
    from speecheq.models import EnsembleModel
    from speecheq.train import train

    first = audio_model / "exp" / "model.pt"
    config = yaml.safe_load((audio_model / "train.yaml").read_text())
    train(config_from_dict({**config, "seed": 1}, "test"), audio_model / "data",
          audio_model / "data", tmp_path / "seed1")  # fmt: skip
    second = tmp_path / "seed1" / "model.pt"
    invoke("ensemble", tmp_path / "ensemble.pt", first, second)
    ensemble = Recognizer.load(tmp_path / "ensemble.pt", tasks=["emotion", "intensity"])
    assert isinstance(load_model(tmp_path / "ensemble.pt").model, EnsembleModel)
    members = [Recognizer.load(path) for path in (first, second)]
    exported = Recognizer.load(export_model(tmp_path / "ensemble.pt", tmp_path / "e.onnx", "onnx"))
    spread = 0.0
    for clip in [speech(1.0 + i / 2, i) for i in range(4)]:
        found = ensemble.predict(clip, RATE)
        each = [member.predict(clip, RATE).posteriors for member in members]
        for name, posterior in found.posteriors.items():
            assert posterior == pytest.approx((each[0][name] + each[1][name]) / 2, abs=1e-5)
            spread = max(spread, abs(each[0][name] - each[1][name]))
        assert found.emotion == max(found.posteriors, key=found.posteriors.__getitem__)
        assert isinstance(found.values["intensity"], int)
        assert exported.predict(clip, RATE).posteriors == pytest.approx(found.posteriors, abs=1e-4)
        joined = np.concatenate([member.embed(clip, RATE) for member in members])
        assert np.allclose(ensemble.embed(clip, RATE), joined, atol=1e-5)
    assert spread > 1e-3  # the members differ, so their mean tests the averaging

    payload = torch.load(second, weights_only=True)
    payload["config"]["model"]["dropout"] = 0.3
    torch.save(payload, tmp_path / "other.pt")
    for models, message in [
        ([first], "needs two model files or more"),
        ([first, tmp_path / "other.pt"], "other.pt: differs from .* in its config"),
        ([tmp_path / "ensemble.pt", first], "ensemble.pt: already an ensemble"),
        ([first, tmp_path / "refused.pt"], "refused.pt: one of the members"),
    ]:
        with pytest.raises(SpeechEQError, match=message):
            save_ensemble(models, tmp_path / "refused.pt")
    assert not (tmp_path / "refused.pt").exists()
