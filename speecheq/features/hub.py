"""Upstreams named as users name them: a local checkpoint directory, or a model id on the
Hugging Face hub (``org/name`` or ``org/name@revision``) resolved through ``huggingface_hub``.

A name is downloaded once, only the files an upstream needs, into the hub cache (``HF_HOME``,
``HF_HUB_CACHE``), and read from there afterwards; with ``HF_HUB_OFFLINE=1``, or where the hub
cannot be reached, the cache alone answers. The resolved commit hash is what a feature conf and
a model file record, so that they name exactly the weights they were made with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from speecheq.errors import SpeechEQError

MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CONFIG_FILES = ["config.json", "preprocessor_config.json"]
SAFETENSORS = ["model.safetensors", "model-*.safetensors", "model.safetensors.index.json"]
PICKLED = ["pytorch_model.bin", "pytorch_model-*.bin", "pytorch_model.bin.index.json"]
FUNASR = ["config.yaml", "model.pt", "tokens.txt"]
"""emotion2vec's checkpoints, in FunASR's layout."""


@dataclass(frozen=True)
class UpstreamSource:
    """Where an upstream's files are, and, for a hub model, its id and resolved commit."""

    path: Path
    model_id: str = ""
    revision: str = ""


def resolve_upstream(spec: str | Path) -> UpstreamSource:
    """The upstream ``spec`` names: an existing directory as it is, else a hub model id with an
    optional ``@revision`` (a branch, tag or commit; default ``main``)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return UpstreamSource(path.resolve())
    model_id, _, revision = str(spec).partition("@")
    if not MODEL_ID.match(model_id):
        raise SpeechEQError(
            f"upstream '{spec}': no such directory, and not a hub model id (org/name[@revision])"
        )
    snapshot = _snapshot(model_id, revision or None, CONFIG_FILES + SAFETENSORS)
    if not any(snapshot.glob("*.safetensors*")):
        snapshot = _snapshot(model_id, revision or None, CONFIG_FILES + PICKLED + FUNASR)
    return UpstreamSource(snapshot, model_id, snapshot.name)


def _snapshot(model_id: str, revision: str | None, patterns: list[str]) -> Path:
    """The cached snapshot of ``model_id`` at ``revision`` holding ``patterns`` (downloaded if
    the hub can be reached and it is not cached); a clear error where neither works."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise SpeechEQError(
            f"upstream '{model_id}': a hub model id needs huggingface_hub: pip install "
            "'speecheq[ssl]' (or give a local checkpoint directory)"
        ) from None
    wanted = f"{model_id}@{revision}" if revision else model_id
    try:
        return Path(snapshot_download(model_id, revision=revision, allow_patterns=patterns))
    except LocalEntryNotFoundError:
        raise SpeechEQError(
            f"upstream '{wanted}': no such directory, and not in the hub cache while the hub "
            "cannot be reached (or HF_HUB_OFFLINE=1): on a machine online run 'hf download "
            f"{model_id}{' --revision ' + revision if revision else ''}' and copy its cache folder "
            "(HF_HUB_CACHE, by default ~/.cache/huggingface/hub), or give a local directory"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpeechEQError(f"upstream '{wanted}': {first[:200]}") from None
