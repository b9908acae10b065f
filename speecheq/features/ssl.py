"""Stage 2 with a pretrained upstream: the chosen hidden layers of every utterance, stored as
features (``speecheq feats --type ssl --upstream DIR``).

Each utterance's matrix is ``frames x (layers * dim)``: the chosen layers side by side, so the
rest of the toolkit reads it as any features, and the model's layer-sum front end takes them
apart again (:class:`speecheq.models.frontends.LayerSum`). The options, written to the data
directory's ``conf/feats.conf``, name the upstream and the digests of its config and weights,
so that models trained on the features know what to recompute them with.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speecheq.errors import SpeechEQError
from speecheq.features.hub import resolve_upstream
from speecheq.features.upstream import Upstream, check_directory, digests, layout

BATCH_SECONDS = 120.0
"""Seconds of padded audio an upstream takes in one batch."""
PADDING = 0.1
"""The most a batch is padding: utterances batched together differ in length by at most this
(on a CPU, padding costs more than batching gains)."""


def parse_layers(text: str, available: int) -> tuple[int, ...]:
    """``all``, ``0,6,12`` or ``6-12`` (with ranges inclusive) as layer indices."""
    if text == "all":
        return tuple(range(available))
    chosen: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            chosen.extend(range(int(first), int(last or first) + 1))
    except ValueError:
        raise SpeechEQError(f"--layers: expected all, 0,6,12 or 6-12, got '{text}'") from None
    bad = [layer for layer in chosen if not 0 <= layer < available]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise SpeechEQError(
            f"--layers '{text}': the upstream has hidden states 0 to {available - 1}, each once"
        )
    return tuple(chosen)


@dataclass(frozen=True)
class SSLConfig:
    """The options of upstream features, as ``conf/feats.conf`` records them."""

    upstream: str
    layers: tuple[int, ...]
    layer_dim: int
    family: str
    config_sha256: str
    weights_sha256: str
    dtype: str = "float16"
    model_id: str = ""
    """The hub id of the upstream, where it was named by one (else empty)."""
    revision: str = ""
    """The commit of the hub model the features came from (else empty)."""

    @property
    def dim(self) -> int:
        return len(self.layers) * self.layer_dim

    @classmethod
    def create(cls, upstream: str | Path, layers: str = "all", dtype: str = "float16") -> SSLConfig:
        """The options of features of the upstream ``upstream`` names (a directory or a hub
        model id, resolved; its config checked)."""
        if dtype not in ("float16", "float32"):
            raise SpeechEQError(f"--dtype must be float16 or float32, got '{dtype}'")
        source = resolve_upstream(upstream)
        model_config = check_directory(source.path)
        num_layers, dim = layout(model_config)
        digest = digests(source.path)
        return cls(
            str(source.path),
            parse_layers(layers, num_layers),
            dim,
            str(model_config["model_type"]),
            digest["config_sha256"],
            digest["weights_sha256"],
            dtype,
            source.model_id,
            source.revision,
        )

    @property
    def upstream_name(self) -> str:
        """``org/name@commit`` for a hub model, else the directory."""
        return f"{self.model_id}@{self.revision}" if self.model_id else self.upstream

    def to_conf(self) -> str:
        lines = ["--type=ssl"]
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            if item.name in ("model_id", "revision") and not text:
                continue  # a local directory: no hub id
            lines.append(f"--{item.name.replace('_', '-')}={text}")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, source: str) -> SSLConfig:
        values: dict[str, str] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            option, _, value = raw.strip().partition("=")
            name = option.removeprefix("--").replace("-", "_")
            if not raw.strip() or name == "type":
                continue
            if name not in {f.name for f in dataclasses.fields(cls)}:
                raise SpeechEQError(
                    f"{source}:{lineno}: unknown upstream feature option '{option}'"
                )
            values[name] = value
        try:
            return cls(
                upstream=values["upstream"],
                layers=tuple(int(x) for x in values["layers"].split(",")),
                layer_dim=int(values["layer_dim"]),
                family=values["family"],
                config_sha256=values["config_sha256"],
                weights_sha256=values["weights_sha256"],
                dtype=values.get("dtype", "float16"),
                model_id=values.get("model_id", ""),
                revision=values.get("revision", ""),
            )
        except (KeyError, ValueError) as err:
            raise SpeechEQError(f"{source}: incomplete upstream feature options ({err})") from None

    def check_upstream(self, where: str) -> Path:
        """The upstream directory, checked to be the one these features came from."""
        path = Path(self.upstream)
        if not path.is_dir() and self.model_id:  # a hub model: its commit, from the cache
            path = resolve_upstream(self.upstream_name).path
        found = digests(path) if path.is_dir() else None
        expected = {"config_sha256": self.config_sha256, "weights_sha256": self.weights_sha256}
        if found != expected:
            what = "is missing" if found is None else f"differs (digests {found})"
            raise SpeechEQError(
                f"{where}: was made with the upstream {path} (digests {expected}), which {what}"
            )
        return path


class SSLExtractor:
    """Computes upstream features for stage 2 (the upstream loaded on first use)."""

    chunk = 64
    """Utterances read before their features are computed, in batches of like length."""

    def __init__(self, config: SSLConfig, device: str = "cpu") -> None:
        self.config = config
        self.device = device
        self._upstream: Upstream | None = None

    def threads(self, jobs: int) -> int:
        """Torch threads per job: the cores divided among the jobs."""
        return max(1, (os.cpu_count() or 1) // jobs)

    @property
    def upstream(self) -> Upstream:
        if self._upstream is None:
            self._upstream = Upstream.load(Path(self.config.upstream)).to(self.device)
        return self._upstream

    def compute_batch(
        self,
        utterances: Sequence[tuple[np.ndarray, int, str]],
        upstream: Upstream | None = None,
    ) -> list[np.ndarray]:
        """Features of utterances ``(samples, rate, who)``, batched by length; in order."""
        upstream = upstream or self.upstream
        inputs = [upstream.prepare(samples, rate, who) for samples, rate, who in utterances]
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        budget = int(BATCH_SECONDS * upstream.rate)
        results: dict[int, np.ndarray] = {}
        batch: list[int] = []
        for index in [*order, None]:
            if index is not None and (
                not batch
                or (
                    len(inputs[index]) * (len(batch) + 1) <= budget
                    and len(inputs[batch[0]]) >= (1 - PADDING) * len(inputs[index])
                )
            ):
                batch.append(index)
                continue
            features = self._run(upstream, [inputs[i] for i in batch])
            results.update(zip(batch, features, strict=True))
            batch = [] if index is None else [index]
        return [results[index] for index in range(len(inputs))]

    @torch.inference_mode()
    def _run(self, upstream: Upstream, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        lengths = torch.tensor([len(x) for x in inputs])
        padded = torch.zeros(len(inputs), int(lengths.max()), 1)
        for row, x in enumerate(inputs):
            padded[row, : len(x)] = torch.from_numpy(x)
        hidden, frames = upstream(padded.to(self.device), lengths.to(self.device))
        chosen = hidden[list(self.config.layers)].float().cpu()  # (layers, batch, frames, dim)
        dtype = np.float16 if self.config.dtype == "float16" else np.float32
        return [
            chosen[:, row, : int(n)].permute(1, 0, 2).reshape(int(n), -1).numpy().astype(dtype)
            for row, n in enumerate(frames.tolist())
        ]
