"""Model files and training checkpoints, both written atomically and read with ``weights_only``.

A **model file** (``model.pt``) is self-describing: the config, each task's inventory (the
emotion class map, the token list, ...), the CMVN mode and global statistics, the feature
options (``conf/feats.conf`` text) and the weights, so ``predict`` and ``infer`` need nothing
else. An **ensemble** (``speecheq ensemble``) is a model file of several networks of one config
(seeds): the first's weights as any model file's, the others' under ``ensemble``; it loads as
one :class:`~speecheq.models.EnsembleModel`. A **checkpoint** (``checkpoint.pt``) holds what
resuming a run needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speecheq.config import TrainConfig, config_from_dict
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import Cmvn
from speecheq.features.hub import resolve_upstream
from speecheq.features.upstream import Upstream, digests
from speecheq.fileio import atomic_write, path_problem
from speecheq.models import EnsembleModel, InputSpec, SpeechEQModel
from speecheq.tasks import TASKS, Task

MODEL_FORMAT = "speecheq-model-1"
MODEL_KEYS = (
    *("format", "config", "inventories", "cmvn", "feature_dim", "feats_conf", "epoch"),
    *("scores", "state_dict"),
)
ENSEMBLE_KEY = "ensemble"
"""The key of an ensemble's other members' state dicts in its model file."""


def build_tasks(config: TrainConfig, inventories: Mapping[str, Mapping[str, Any]]) -> list[Task]:
    """The enabled tasks of ``config``, in config order, with their inventories."""
    return [TASKS[name](options, inventories[name]) for name, options in config.tasks.items()]


def build_model(
    feature_dim: int,
    config: TrainConfig,
    tasks: Sequence[Task],
    spec: InputSpec | None = None,
    upstream: Upstream | None = None,
) -> SpeechEQModel:
    """The network for ``tasks``: the front end ``spec`` says (with ``upstream`` for raw
    audio), the shared encoder and one head per task."""
    dims = SpeechEQModel.dims(config.model)
    heads = {task.name: task.build_head(dims) for task in tasks}
    return SpeechEQModel(feature_dim, config.model, heads, spec, upstream)


UPSTREAM_PREFIX = "encoder.frontend.upstream."
"""The state-dict keys of a model's upstream (left out of the model file when it is frozen)."""


@dataclass
class TrainedModel:
    """A loaded model file: the network (or ensemble) in eval mode and what it needs to read
    features."""

    model: SpeechEQModel | EnsembleModel
    tasks: list[Task]
    config: TrainConfig
    cmvn: Cmvn
    feature_dim: int
    feats_conf: str | None
    """The text of the training data's ``conf/feats.conf`` (None if it had none)."""
    epoch: int
    scores: dict[str, float]
    """The validation scores of the saved epoch."""
    trained_on: dict[str, Any]
    """The training data: its path, fingerprint and corpora (empty in older model files)."""

    def task(self, name: str) -> Task | None:
        return next((task for task in self.tasks if task.name == name), None)


def save_torch(payload: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file renamed over ``path``."""
    with atomic_write(path, "wb") as out:
        torch.save(dict(payload), out)


def load_torch(path: Path, what: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with one-sentence errors naming ``path``."""
    problem = path_problem(path)
    if problem:
        raise SpeechEQError(f"{path}: {what} {problem}")
    if path.suffix.lower() in (".onnx", ".ts"):
        raise SpeechEQError(
            f"{path}: an exported model; this command reads the {what} 'speecheq train' writes "
            "(.pt), while 'speecheq infer' and the Recognizer also run exported ones"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a foreign or truncated file fails in many ways inside torch
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpeechEQError(f"{path}: cannot read this {what} ({first[:200]})") from None
    if not isinstance(payload, dict):
        raise SpeechEQError(f"{path}: not a speecheq {what}")
    return payload


def initialise(model: SpeechEQModel, path: Path) -> list[str]:
    """Copy into ``model`` the parameters of the model file ``path`` whose name and shape agree;
    return the names of the parameters and buffers left as they were.

    The whole shared encoder must fit (a frozen upstream aside, which a model file names but
    does not hold); heads may not (other classes, another token set).
    """
    stored = load_torch(path, "model file").get("state_dict")
    if not isinstance(stored, dict):
        raise SpeechEQError(f"{path}: not a speecheq model file (no state_dict)")
    own = model.state_dict()
    matched = {k: v for k, v in stored.items() if k in own and own[k].shape == v.shape}
    encoder = [k for k in own if k.startswith("encoder.") and not k.startswith(UPSTREAM_PREFIX)]
    fitting = sum(key in matched for key in encoder)
    if fitting < len(encoder):
        raise SpeechEQError(
            f"{path}: its encoder is not the one configured here ({fitting} of {len(encoder)} "
            "tensors fit: another encoder, size or feature width)"
        )
    model.load_state_dict(matched, strict=False)
    return sorted(set(own) - set(matched))


def model_payload(
    model: SpeechEQModel,
    tasks: Sequence[Task],
    config: TrainConfig,
    *,
    cmvn: Cmvn,
    feature_dim: int,
    feats_conf: str | None,
    epoch: int,
    scores: Mapping[str, float],
    trained_on: Mapping[str, Any],
) -> dict[str, Any]:
    """The content of a model file (plain data and tensors only). A frozen upstream is named
    (path and digests), not stored; a fine-tuned one's weights are in the state dict."""
    global_stats = None if cmvn.global_stats is None else torch.from_numpy(cmvn.global_stats)
    upstream = None
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    if model.spec.kind == "upstream":
        frontend = model.encoder.frontend
        upstream = {
            **frontend.upstream.origin,
            "config": frontend.upstream.config_text,
            "preprocessor": frontend.upstream.preprocessor_text,
            "fine_tuned": not frontend.freeze,
        }
        if frontend.freeze:
            state = {k: v for k, v in state.items() if not k.startswith(UPSTREAM_PREFIX)}
    return {
        "format": MODEL_FORMAT,
        "config": config.to_dict(),
        "inventories": {task.name: task.inventory for task in tasks},
        "cmvn": {"mode": cmvn.mode, "global_stats": global_stats},
        "feature_dim": feature_dim,
        "feats_conf": feats_conf,
        "epoch": epoch,
        "scores": dict(scores),
        "trained_on": dict(trained_on),
        "input": dataclasses.asdict(model.spec),
        "upstream": upstream,
        "state_dict": state,
    }


def _upstream(path: Path, stored: Mapping[str, Any]) -> Upstream:
    """The upstream of a model file: rebuilt from its stored config (fine-tuned: the weights
    are in the model file), or loaded from its directory, checked to be the one trained with."""
    if stored["fine_tuned"]:
        return Upstream.from_config(stored["config"], stored["preprocessor"])
    directory = Path(stored["path"])
    if not directory.is_dir() and stored.get("model_id"):  # a hub model: its commit, cached
        directory = resolve_upstream(f"{stored['model_id']}@{stored['revision']}").path
    expected = {key: stored[key] for key in ("config_sha256", "weights_sha256")}
    found = digests(directory) if directory.is_dir() else None
    if found != expected:
        what = "is missing" if found is None else f"differs (digests {found})"
        raise SpeechEQError(
            f"{path}: was trained with the upstream {directory} (digests {expected}), which {what}"
        )
    upstream = Upstream.load(directory)
    hub = {key: stored[key] for key in ("model_id", "revision") if key in stored}
    upstream.origin = {"path": str(directory), **found, **hub}
    return upstream


def load_model(path: str | Path, device: torch.device | str = "cpu") -> TrainedModel:
    """Read a model file written by ``speecheq train`` (or an ensemble of them); the network is
    in eval mode."""
    path = Path(path)
    payload = _model_payload(path)
    phone = payload["config"].get("tasks", {}).get("phone")
    if isinstance(phone, dict):  # model files before tasks.phone.layer: the head read the output
        phone.setdefault("layer", 0)
    config = config_from_dict(payload["config"], str(path))
    spec = InputSpec(**payload.get("input", {}))
    upstream = _upstream(path, payload["upstream"]) if spec.kind == "upstream" else None
    try:
        tasks = build_tasks(config, payload["inventories"])
        members = [
            _network(state, payload["feature_dim"], config, tasks, spec, upstream)
            for state in [payload["state_dict"], *payload.get(ENSEMBLE_KEY, [])]
        ]
        stats = payload["cmvn"]["global_stats"]
        cmvn = Cmvn(payload["cmvn"]["mode"], None if stats is None else np.asarray(stats.numpy()))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpeechEQError(
            f"{path}: its weights or inventories do not fit its config ({first[:200]})"
        ) from None
    model: SpeechEQModel | EnsembleModel = members[0]
    if len(members) > 1:
        model = EnsembleModel(members, {task.name: task.average for task in tasks})
    return TrainedModel(
        model.to(device).eval(),
        tasks,
        config,
        cmvn,
        payload["feature_dim"],
        payload["feats_conf"],
        payload["epoch"],
        payload["scores"],
        dict(payload.get("trained_on") or {}),
    )


def _model_payload(path: Path) -> dict[str, Any]:
    """The content of a model file, checked to have every key one needs."""
    payload = load_torch(path, "model file")
    if payload.get("format") != MODEL_FORMAT:
        raise SpeechEQError(f"{path}: not a speecheq model file (format '{payload.get('format')}')")
    missing = sorted(set(MODEL_KEYS) - set(payload))
    if missing:
        raise SpeechEQError(f"{path}: a damaged model file (it has no {', '.join(missing)})")
    return payload


def _network(
    state: Mapping[str, torch.Tensor],
    feature_dim: int,
    config: TrainConfig,
    tasks: Sequence[Task],
    spec: InputSpec,
    upstream: Upstream | None,
) -> SpeechEQModel:
    """The network of a model file with the weights ``state`` (a frozen upstream's are not
    stored); raises RuntimeError when they do not fit."""
    model = build_model(feature_dim, config, tasks, spec, upstream)
    renamed = {  # model files before the front ends were named so
        key.replace("encoder.subsampling.", "encoder.frontend."): value
        for key, value in state.items()
    }
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    if unexpected or [key for key in missing if not key.startswith(UPSTREAM_PREFIX)]:
        raise RuntimeError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model


def save_ensemble(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Write the model files ``paths`` (one config, seeds aside) as one ensemble model file."""
    if len(paths) < 2:
        raise SpeechEQError("an ensemble needs two model files or more")
    if any(Path(path).resolve() == Path(out).resolve() for path in paths):
        raise SpeechEQError(f"{out}: one of the members; write the ensemble to another file")
    payloads = [_model_payload(Path(path)) for path in paths]
    first = payloads[0]
    for path, payload in zip(paths, payloads, strict=True):
        if payload.get(ENSEMBLE_KEY):
            raise SpeechEQError(f"{path}: already an ensemble; give its members' model files")
        if payload.get("input", {}).get("kind") == "upstream":
            raise SpeechEQError(f"{path}: a model with an upstream inside cannot join an ensemble")
        differs = _difference(first, payload)
        if differs:
            raise SpeechEQError(
                f"{path}: differs from {paths[0]} in its {differs}; an ensemble's members share "
                "everything but their seed"
            )
    others = [payload["state_dict"] for payload in payloads[1:]]
    out = Path(out)
    save_torch({**first, ENSEMBLE_KEY: others}, out)
    return out


def _difference(first: Mapping[str, Any], other: Mapping[str, Any]) -> str | None:
    """What of ``other`` (a model file's content) keeps it out of ``first``'s ensemble."""
    unseeded = [{k: v for k, v in p["config"].items() if k != "seed"} for p in (first, other)]
    if unseeded[0] != unseeded[1]:
        return "config"
    for key in ("inventories", "feature_dim", "feats_conf", "input"):
        if first.get(key) != other.get(key):
            return key.replace("_", " ")
    stats = [p["cmvn"]["global_stats"] for p in (first, other)]
    same_stats = (stats[0] is None) == (stats[1] is None) and (
        stats[0] is None or torch.equal(stats[0], stats[1])
    )
    if first["cmvn"]["mode"] != other["cmvn"]["mode"] or not same_stats:
        return "CMVN"
    return None
