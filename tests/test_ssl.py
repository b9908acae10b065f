"""Pretrained upstreams, with tiny random models of every family written as checkpoints are:
loading and refusing, hidden states as transformers computes them, padding that changes
nothing, the layer sum, stage 2 to 5 on upstream features, training with the upstream inside
the model (frozen, fine-tuned, under DDP), and inference on raw audio."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile
import torch
import yaml
from torch import multiprocessing

from speecheq import Recognizer
from speecheq.config import config_from_dict
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.features import SSLConfig, make_feats
from speecheq.features.upstream import Upstream
from speecheq.fileio import read_table
from speecheq.inference.export import check_exportable, export_model
from speecheq.modelfile import load_model
from speecheq.models.frontends import LayerSum
from speecheq.predict import predict
from speecheq.train import train
from tests.synthetic import TINY, one_thread, speech, write_audio_data  # noqa: F401
from tests.upstreams import FAMILIES, tiny_emotion2vec, tiny_upstream

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("upstreams")
    return {family: tiny_upstream(root, family) for family in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_are_those_of_transformers_and_padding_changes_nothing(
    family: str, upstreams: dict[str, Path]
) -> None:
    import transformers

    upstream = Upstream.load(upstreams[family])
    short, long = speech(0.6, 1), speech(1.3, 2)
    inputs = [torch.from_numpy(upstream.prepare(x, 16000, "x")) for x in (short, long)]
    with torch.inference_mode():
        alone, frames = upstream(inputs[0][None], torch.tensor([len(inputs[0])]))
        batch = torch.zeros(2, len(inputs[1]), 1)
        batch[0, : len(inputs[0])], batch[1] = inputs[0], inputs[1]
        together, _ = upstream(batch, torch.tensor([len(inputs[0]), len(inputs[1])]))
        reference = transformers.AutoModel.from_pretrained(upstreams[family]).eval()
        if family == "whisper":
            mels = upstream.mels(short, sampling_rate=16000, return_tensors="pt").input_features
            own = reference.get_encoder()(mels, output_hidden_states=True).hidden_states
        else:
            own = reference(inputs[0][None, :, 0], output_hidden_states=True).hidden_states
    n = int(frames[0])
    assert alone.shape == (upstream.num_layers, 1, n, upstream.dim)
    assert torch.allclose(alone, torch.stack(own)[:, :, :n], atol=1e-5)
    assert torch.allclose(together[:, 0, :n], alone[:, 0], atol=1e-5), "padding changed them"


def test_the_layer_sum_learns_its_weights() -> None:
    layer_sum = LayerSum(3, 4, 5)
    feats = torch.randn(2, 7, 3 * 4)
    output, lengths = layer_sum(feats, torch.tensor([7, 5]))
    expected = layer_sum.project(feats.view(2, 7, 3, 4).mean(dim=2))  # equal weights at first
    assert torch.allclose(output, expected, atol=1e-6) and lengths.tolist() == [7, 5]
    output.square().sum().backward()
    assert layer_sum.weights.grad is not None and layer_sum.weights.grad.abs().sum() > 0


def test_a_bad_upstream_is_one_sentence(upstreams: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SpeechEQError, match="none': no such directory, and not a hub model id"):
        Upstream.load(tmp_path / "none")
    broken = Path(shutil.copytree(upstreams["hubert"], tmp_path / "broken"))
    (broken / "model.safetensors").unlink()
    with pytest.raises(SpeechEQError, match="broken: no weights"):
        Upstream.load(broken)
    (broken / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(SpeechEQError, match="model type 'bert' is not a supported upstream"):
        Upstream.load(broken)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    write_audio_data(root)
    return root


def test_an_upstream_embeds_the_mean_of_its_chosen_layers(
    upstreams: dict[str, Path], audio: Path, tmp_path: Path
) -> None:
    import kaldiio
    import soundfile
    import transformers
    from typer.testing import CliRunner

    from speecheq.cli.main import app

    path = upstreams["wav2vec2-large"]  # layer-normalised: batches change nothing
    result = CliRunner().invoke(
        app, ["embed", str(path), str(audio / "data"), str(tmp_path / "emb"), "--layers", "1-2"]
    )
    assert result.exit_code == 0, result.output
    stored = dict(kaldiio.load_scp(str(tmp_path / "emb" / "embeddings.scp")))
    reference = transformers.AutoModel.from_pretrained(path).eval()
    upstream = Upstream.load(path)
    for utt, wav in read_table(audio / "data" / "wav.scp").items():
        samples, rate = soundfile.read(wav, dtype="float32")
        waveform = torch.from_numpy(upstream.prepare(samples, rate, utt))[None, :, 0]
        with torch.inference_mode():
            hidden = reference(waveform, output_hidden_states=True).hidden_states
        expected = torch.stack(hidden[1:3]).mean(dim=0)[0].mean(dim=0).numpy()
        assert np.allclose(stored[utt], expected, atol=1e-4)
    with pytest.raises(SpeechEQError, match="--layers is for an upstream"):
        CliRunner().invoke(
            app, ["embed", str(audio / "none.pt"), str(audio / "data"), str(tmp_path / "x"),
                  "--layers", "1"], catch_exceptions=False,
        )  # fmt: skip


def tiny_config(**model: object) -> object:
    data = {
        **TINY,
        "model": {**TINY["model"], **model},
        "optim": {**TINY["optim"], "epochs": 2},
        "features": {"cmvn": "none", "specaugment": {"freq_masks": 0, "time_masks": 0}},
        "tasks": {"emotion": {}, "gender": {"weight": 0.3}},
    }
    return config_from_dict(data, "test")


@pytest.mark.slow
def test_stages_2_to_5_on_upstream_features(
    upstreams: dict[str, Path], audio: Path, tmp_path: Path
) -> None:
    wavlm = shutil.copytree(upstreams["wavlm"], tmp_path / "wavlm")  # its weights are swapped
    data = DataDir.load(audio / "data")
    data.save(tmp_path / "data")
    config = SSLConfig.create(wavlm, layers="1-2")
    report = make_feats(tmp_path / "data", config, nj=2)
    assert report.dim == 2 * 32 and report.utterances == 8
    conf = (tmp_path / "data" / "conf" / "feats.conf").read_text()
    assert "--type=ssl" in conf and f"--weights-sha256={config.weights_sha256}" in conf
    again = make_feats(tmp_path / "data", config, nj=2)
    assert again.reused_jobs == 2  # resumable: complete jobs are kept
    result = train(
        tiny_config(encoder="none"), tmp_path / "data", tmp_path / "data", tmp_path / "exp"
    )
    assert len(result.history) == 2
    model = tmp_path / "exp" / "model.pt"
    summaries = predict(model, tmp_path / "data", tmp_path / "decode", device="cpu")
    assert {s.task for s in summaries} == {"emotion", "gender"}
    posteriors = read_table(tmp_path / "decode" / "hyp" / "utt2emo.post")
    recognizer = Recognizer.load(model)  # recomputes the upstream features from raw audio
    for utt, wav in read_table(tmp_path / "data" / "wav.scp").items():
        expected = [float(p) for p in posteriors[utt].split()]
        found = list(recognizer.predict_file(wav).posteriors.values())
        assert found == pytest.approx(expected, abs=2e-3)  # stored as float16
    swapped = tiny_upstream(tmp_path / "other", "wavlm", seed=7)  # other weights
    shutil.copytree(swapped, wavlm, dirs_exist_ok=True)
    with pytest.raises(SpeechEQError, match="was made with the upstream .* which differs"):
        Recognizer.load(model)


def hub_cache(root: Path, model_id: str, snapshots: dict[str, Path], refs: dict[str, str]) -> Path:
    """A hub cache laid out as huggingface_hub writes it: ``models--org--name/snapshots/<commit>``
    holding each checkpoint's files, and ``refs/<branch>`` naming a commit."""
    repo = root / f"models--{model_id.replace('/', '--')}"
    for commit, checkpoint in snapshots.items():
        shutil.copytree(checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    for ref, commit in refs.items():
        (repo / "refs" / ref).write_text(commit)
    return root


@pytest.mark.slow
def test_a_hub_id_resolves_offline_records_its_commit_and_a_model_refuses_another(
    upstreams: dict[str, Path], audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants
    from typer.testing import CliRunner

    from speecheq.cli.main import app

    first, second = "1" * 40, "2" * 40
    other = tiny_upstream(tmp_path / "other", "wavlm", seed=5)
    cache = hub_cache(
        tmp_path / "hub", "org/tiny-wavlm", {first: upstreams["wavlm"], second: other},
        {"main": first},
    )  # fmt: skip
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for name, commit in (("main", first), ("second", second)):
        DataDir.load(audio / "data").save(tmp_path / name)
        revision = "" if name == "main" else f"@{commit}"
        result = CliRunner().invoke(
            app, ["feats", str(tmp_path / name), "--upstream", f"org/tiny-wavlm{revision}"]
        )
        assert result.exit_code == 0, result.output
        conf = (tmp_path / name / "conf" / "feats.conf").read_text()
        assert f"--model-id=org/tiny-wavlm\n--revision={commit}\n" in conf
    assert Upstream.load("org/tiny-wavlm").origin["revision"] == first
    with pytest.raises(
        SpeechEQError, match="'org/tiny-wavlm@v2': no such directory, and not in the hub cache"
    ):
        Upstream.load("org/tiny-wavlm@v2")
    with pytest.raises(SpeechEQError, match="no such directory, and not a hub model id"):
        SSLConfig.create(str(tmp_path / "nowhere"))
    train(tiny_config(encoder="none"), tmp_path / "main", tmp_path / "main", tmp_path / "exp")
    expected = f"upstream org/tiny-wavlm@{second}; the model's: org/tiny-wavlm@{first}"
    with pytest.raises(SpeechEQError, match=expected):
        predict(tmp_path / "exp" / "model.pt", tmp_path / "second", tmp_path / "d", device="cpu")
    found = Recognizer.load(tmp_path / "exp" / "model.pt").predict(speech(1.0, 0), 16000)
    assert sum(found.posteriors.values()) == pytest.approx(1.0, abs=1e-4)  # from the cache


@pytest.mark.slow
@pytest.mark.parametrize("freeze", [True, False])
def test_training_with_the_upstream_inside_the_model(
    freeze: bool, upstreams: dict[str, Path], audio: Path, tmp_path: Path
) -> None:
    path = upstreams["wav2vec2-large"]
    before = {k: v.clone() for k, v in Upstream.load(path).state_dict().items()}
    config = tiny_config(upstream={"path": str(path), "freeze": freeze, "layers": "all"})
    result = train(config, audio / "data", audio / "data", tmp_path / "exp")
    frontend = result.model.encoder.frontend
    changed = any(
        not torch.equal(value, before[key]) for key, value in frontend.upstream.state_dict().items()
    )
    assert changed != freeze
    payload = torch.load(tmp_path / "exp" / "model.pt", weights_only=True)
    stored = any(key.startswith("encoder.frontend.upstream.") for key in payload["state_dict"])
    assert stored != freeze and payload["upstream"]["fine_tuned"] != freeze
    loaded = load_model(tmp_path / "exp" / "model.pt").model.encoder.frontend.upstream
    kept = all(torch.equal(value, before[key]) for key, value in loaded.state_dict().items())
    assert kept == freeze  # frozen: reloaded from its folder; fine-tuned: from the model file
    predict(tmp_path / "exp" / "model.pt", audio / "data", tmp_path / "decode", device="cpu")
    recognizer = Recognizer.load(tmp_path / "exp" / "model.pt")
    wav = read_table(audio / "data" / "wav.scp")["spk1-happy"]
    posteriors = read_table(tmp_path / "decode" / "hyp" / "utt2emo.post")["spk1-happy"]
    found = list(recognizer.predict_file(wav).posteriors.values())
    assert found == pytest.approx([float(p) for p in posteriors.split()], abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["wav2vec2", "wavlm"])
def test_a_model_with_its_upstream_inside_exports_to_onnx_with_the_same_outputs(
    family: str, upstreams: dict[str, Path], audio: Path, tmp_path: Path
) -> None:
    """The upstream's graph goes into the export (group-normalised wav2vec2, layer-normalised
    WavLM with its relative positions); utterances of different lengths, one at a time, give
    the model file's posteriors and embeddings."""
    config = tiny_config(upstream={"path": str(upstreams[family]), "layers": "all"})
    train(config, audio / "data", audio / "data", tmp_path / "exp")
    model = tmp_path / "exp" / "model.pt"
    export_model(model, tmp_path / "model.onnx", "onnx")
    torch_rec, onnx_rec = Recognizer.load(model), Recognizer.load(tmp_path / "model.onnx")
    wavs = sorted(read_table(audio / "data" / "wav.scp").values())[:3]
    feats = []
    for index, wav in enumerate(wavs):  # 1.0, 0.8 and 0.6 s: padded in one batch
        samples, rate = soundfile.read(wav, dtype="float32")
        feats.append(
            (wav, torch_rec.features(samples[: len(samples) - index * rate // 5], rate, wav))
        )
    for (_, mine), (_, theirs) in zip(
        onnx_rec.predict_many(feats), torch_rec.predict_many(feats), strict=True
    ):
        assert mine.posteriors == pytest.approx(theirs.posteriors, abs=1e-4)
    for (_, mine), (_, theirs) in zip(
        onnx_rec.embed_many(feats), torch_rec.embed_many(feats), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, atol=1e-4)
    with pytest.raises(SpeechEQError, match="exports to ONNX only"):
        export_model(model, tmp_path / "model.ts", "torchscript")


def test_a_whisper_upstream_is_refused_for_export_with_the_reason(
    upstreams: dict[str, Path],
) -> None:
    with pytest.raises(SpeechEQError, match="log-mel front end is transformers' feature"):
        check_exportable(Upstream.load(upstreams["whisper"]), "onnx", Path("model.pt"))


def _ddp_worker(rank: int, port: int, upstream: str, data: Path, exp: Path) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    config = tiny_config(upstream={"path": upstream, "freeze": False})
    result = train(config, data, data, exp, device="cpu")
    torch.save(result.model.state_dict(), exp.parent / f"rank{rank}.pt")


@pytest.mark.slow
def test_fine_tuning_under_ddp_on_two_cpu_processes(
    upstreams: dict[str, Path], audio: Path, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = (port, str(upstreams["hubert"]), audio / "data", tmp_path / "exp")
    multiprocessing.spawn(_ddp_worker, args=args, nprocs=2)
    states = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
    assert (tmp_path / "exp" / "model.pt").is_file()
    assert yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())["model"]["upstream"]
    assert np.isfinite(
        float((tmp_path / "exp" / "metrics.csv").read_text().splitlines()[-1].split(",")[2])
    )


@pytest.fixture(scope="module")
def emotion2vec_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random emotion2vec checkpoints in FunASR's published layout: the base kind, and
    the plus kind with its 9-way head and tokens.txt."""
    pytest.importorskip("funasr")
    root = tmp_path_factory.mktemp("emotion2vec")
    return {"base": tiny_emotion2vec(root), "plus": tiny_emotion2vec(root, head=True)}


@pytest.mark.parametrize("kind", ["base", "plus"])
def test_emotion2vec_layers_are_funasrs_and_padding_changes_nothing(
    kind: str, emotion2vec_models: dict[str, Path]
) -> None:
    """The last layer is what FunASR's own AutoModel gives for the checkpoint (its loading
    code, offline); every layer of an utterance is the same alone or padded in a batch."""
    import hashlib

    from funasr import AutoModel

    path = emotion2vec_models[kind]
    upstream = Upstream.load(path)
    assert (upstream.family, upstream.num_layers, upstream.dim) == ("emotion2vec", 3, 32)
    config_digest = hashlib.sha256((path / "config.yaml").read_bytes()).hexdigest()[:16]
    assert upstream.origin["config_sha256"] == config_digest
    short, long = speech(0.7, 1), speech(1.0, 2)
    prepared = [torch.from_numpy(upstream.prepare(x, 16000, "x")) for x in (short, long)]
    batch = torch.zeros(2, len(prepared[1]), 1)
    batch[0, : len(prepared[0])], batch[1] = prepared[0], prepared[1]
    with torch.inference_mode():
        hidden, frames = upstream(batch, torch.tensor([len(p) for p in prepared]))
        alone, _ = upstream(prepared[0][None], torch.tensor([len(prepared[0])]))
    assert frames.tolist() == [34, 49]  # 50 frames a second
    torch.testing.assert_close(hidden[:, 0, :34], alone[:, 0], atol=1e-5, rtol=0)
    funasr = AutoModel(model=str(path), disable_update=True, device="cpu", disable_pbar=True)
    found = funasr.generate(torch.from_numpy(long), granularity="frame", extract_embedding=True)
    np.testing.assert_allclose(found[0]["feats"], hidden[-1, 1].numpy(), atol=1e-4)


@pytest.mark.slow
def test_emotion2vec_as_features_and_inside_a_model_exported_to_onnx(
    emotion2vec_models: dict[str, Path], audio: Path, tmp_path: Path
) -> None:
    """Stage 2 stores its layers and stages 4-5 train and decode on them; a model with it
    inside trains, predicts from raw audio and exports to ONNX with the same posteriors."""
    path = emotion2vec_models["plus"]
    DataDir.load(audio / "data").save(tmp_path / "data")
    config = SSLConfig.create(path, layers="all")
    make_feats(tmp_path / "data", config, nj=1)
    conf = (tmp_path / "data" / "conf" / "feats.conf").read_text()
    assert f"--upstream={path}" in conf and "--weights-sha256=" in conf
    utt, matrix = next(iter(kaldiio.load_scp(str(tmp_path / "data" / "feats.scp")).items()))
    assert matrix.shape[1] == 3 * 32
    train(tiny_config(encoder="none"), tmp_path / "data", tmp_path / "data",
          tmp_path / "exp_feats")  # fmt: skip
    summaries = predict(
        tmp_path / "exp_feats" / "model.pt", tmp_path / "data", tmp_path / "decode", device="cpu"
    )
    assert {summary.task for summary in summaries} == {"emotion", "gender"}
    train(tiny_config(upstream={"path": str(path)}), audio / "data", audio / "data",
          tmp_path / "exp")  # fmt: skip
    model = tmp_path / "exp" / "model.pt"
    export_model(model, tmp_path / "model.onnx", "onnx")
    wav = read_table(audio / "data" / "wav.scp")[utt]
    from_file = Recognizer.load(model).predict_file(wav).posteriors
    from_onnx = Recognizer.load(tmp_path / "model.onnx").predict_file(wav).posteriors
    assert from_onnx == pytest.approx(from_file, abs=1e-4)


def test_a_bad_emotion2vec_checkpoint_is_one_sentence(
    emotion2vec_models: dict[str, Path], tmp_path: Path
) -> None:
    broken = shutil.copytree(emotion2vec_models["base"], tmp_path / "broken")
    stored = torch.load(broken / "model.pt", weights_only=True)
    del stored["model"]["blocks.1.mlp.fc2.bias"]
    torch.save(stored, broken / "model.pt")
    with pytest.raises(SpeechEQError, match=r"1 tensor\(s\) missing \(e.g. blocks.1.mlp.fc2"):
        Upstream.load(broken)
    (broken / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SpeechEQError, match="model.pt: cannot read its weights"):
        Upstream.load(broken)
    (broken / "config.yaml").write_text("model: Emotion2vec\nmodel_conf: {depth: 2}\n")
    with pytest.raises(SpeechEQError, match="config.yaml: not an emotion2vec config"):
        Upstream.load(broken)


def test_an_emotion2vec_hub_id_resolves_from_the_cache_offline(
    emotion2vec_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    commit = "3" * 40
    cache = hub_cache(
        tmp_path / "hub", "emotion2vec/emotion2vec_plus_base",
        {commit: emotion2vec_models["plus"]}, {"main": commit},
    )  # fmt: skip
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    upstream = Upstream.load("emotion2vec/emotion2vec_plus_base")
    assert upstream.family == "emotion2vec"
    assert upstream.origin["model_id"] == "emotion2vec/emotion2vec_plus_base"
    assert upstream.origin["revision"] == commit
