"""Speed perturbation the Kaldi way (``perturb_data_dir_speed.sh``): copies of every utterance
played faster or slower (tempo and pitch together, as ``sox speed`` does), each copy of a
speaker a new pseudo-speaker with its own normalisation statistics.

``speecheq data perturb SRC DST --speeds 0.9,1.1`` writes the copies' audio to ``DST/wav/`` and
their data directory to ``DST``: utterance ``sp0.9-<utt>`` of speaker ``sp0.9-<spk>``, with
every label of its source (durations scaled; features, frame counts and CMVN are computed again
in stage 2). ``speecheq data split ... --perturbed DST`` then adds to each fold's training set
the copies of its training utterances, and only those: a test speaker's copies never train.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchaudio

from speecheq.audio import read_audio, write_wav
from speecheq.console import progress_bar
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError

COMPUTED = ("feats.scp", "utt2num_frames", "cmvn.scp")
"""Tables the copies do not inherit: stage 2 computes them from the copies' audio."""
_COPY = re.compile(r"sp(\d+(?:\.\d+)?)-(.+)")


def copy_id(speed: float, source: str) -> str:
    """The id of the copy of ``source`` (an utterance or speaker) at ``speed``: ``sp0.9-<id>``."""
    return f"sp{speed:g}-{source}"


def source_id(copy: str) -> str | None:
    """The utterance a copy's id was made from, or None for an id that is not a copy's."""
    match = _COPY.fullmatch(copy)
    return match[2] if match else None


def parse_speeds(text: str) -> list[float]:
    """``0.9,1.1`` as speeds: in [0.5, 2] with two decimals at most, other than 1, each once."""
    try:
        speeds = [float(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise SpeechEQError(f"--speeds: expected numbers such as 0.9,1.1, got '{text}'") from None
    if (
        not speeds
        or any(not 0.5 <= s <= 2 or s == 1 or round(s, 2) != s for s in speeds)
        or len(set(speeds)) < len(speeds)
    ):
        raise SpeechEQError(
            f"--speeds '{text}': each between 0.5 and 2 (two decimals at most), not 1, and once"
        )
    return speeds


def change_speed(samples: np.ndarray, speed: float) -> np.ndarray:
    """``samples`` played ``speed`` times as fast at the same rate (``len / speed`` samples)."""
    factor = round(speed * 100)
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return torchaudio.functional.resample(waveform, factor, 100).numpy()


def perturb_speed(data: DataDir, out_dir: str | Path, speeds: Sequence[float]) -> DataDir:
    """Write the copies of every utterance of ``data`` at each of ``speeds`` (audio in
    ``out_dir/wav/sp<speed>/``) and their data directory to ``out_dir``; return it."""
    out_dir = Path(out_dir)
    wav = data.get("wav.scp")
    tables: dict[str, dict[str, str]] = {name: {} for name in data.tables if name not in COMPUTED}
    with progress_bar("speed perturbation", len(speeds) * len(data.utts)) as advance:
        for speed in speeds:
            for utt in data.utts:
                samples, rate = read_audio(wav[utt], utt)
                path = out_dir / "wav" / f"sp{speed:g}" / f"{utt}.wav"
                write_wav(path, np.clip(change_speed(samples, speed), -1, 1), rate)
                tables["wav.scp"][copy_id(speed, utt)] = str(path.resolve())
                advance(1)
            for name, table in data.tables.items():
                if name in COMPUTED or name == "wav.scp":
                    continue
                for key, value in table.items():
                    if name == "utt2spk":
                        value = copy_id(speed, value)
                    elif name == "utt2dur":
                        value = f"{float(value) / speed:.3f}"
                    tables[name][copy_id(speed, key)] = value
    copies = DataDir(tables)
    copies.save(out_dir)
    return copies


def with_copies(train: DataDir, perturbed: DataDir, where: str) -> DataDir:
    """``train`` and the copies in ``perturbed`` of its utterances (features and CMVN stats
    computed for them, with the same options)."""
    if perturbed.conf.get("feats.conf") != train.conf.get("feats.conf"):
        raise SpeechEQError(
            f"{where}: its features were computed with other options than the data split "
            "(conf/feats.conf differs); compute them with the same conf"
        )
    keep = set(train.utts)
    copies = perturbed.subset(utt for utt in perturbed.utts if source_id(utt) in keep)
    missing = [name for name in train.tables if train.has(name) and not copies.has(name)]
    if copies.utts and missing:
        raise SpeechEQError(f"{where}: the copies have no {missing[0]} (run stage 2 on it)")
    merged = {name: {**table, **copies.get(name)} for name, table in train.tables.items()}
    return DataDir(merged, train.conf)
