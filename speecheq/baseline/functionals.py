"""Utterance-level functionals: one fixed-length vector an utterance, for the classic baseline.

Three sets:

- ``fbank``: statistics of our own frames (always available): 80 log-mel filterbanks and 3
  pitch features (:mod:`speecheq.features`) and their deltas, each summarised by its mean,
  standard deviation, skewness, kurtosis, minimum, maximum, 1st/25th/50th/75th/99th percentiles
  and linear slope over time (12 x 166 = 1,992 values).
- ``egemaps``: openSMILE's eGeMAPSv02 functionals (88 values), and ``compare``: its
  ComParE_2016 functionals (6,373 values), through the ``opensmile`` package
  (``pip install 'speecheq[opensmile]'``; its licence allows research and other non-commercial
  use only).

``speecheq baseline functionals DATA OUT`` writes ``OUT/functionals.ark`` and
``OUT/functionals.scp`` (a ``1 x D`` matrix per utterance), ``OUT/names.txt`` (the D names)
and ``OUT/conf`` (the set); a finished folder for the same set and utterances is reused. On a
Slurm cluster (a :class:`~speecheq.cluster.SlurmCluster`), the utterances are split into ``nj``
jobs, each writing its block to ``OUT/jobs/`` (kept until the folder is finished, so a failed
job is redone alone), and the blocks are merged in order into the same files.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import torch

from speecheq.audio import read_audio
from speecheq.cluster import SlurmCluster
from speecheq.console import note, progress_bar
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.features.config import FeatureConfig
from speecheq.features.fbank import compute_features
from speecheq.features.jobs import worker_context
from speecheq.fileio import atomic_write, make_folder, read_table, write_matrix, write_table

SETS = ("fbank", "egemaps", "compare")
STATISTICS = ("mean", "std", "skew", "kurtosis", "min", "max", "p1", "p25", "p50", "p75", "p99")
CHUNK = 16
"""Utterances a worker computes at a time."""


def frame_statistics(frames: np.ndarray) -> np.ndarray:
    """The :data:`STATISTICS` and the linear slope (per second) of each column of ``frames``
    ``(T, D)`` and of its deltas: ``2 * D * 12`` values, grouped by statistic."""
    frames = frames.astype(np.float64)
    deltas = np.diff(frames, axis=0, prepend=frames[:1])
    both = np.concatenate([frames, deltas], axis=1)
    mean, std = both.mean(axis=0), both.std(axis=0)
    spread = np.where(std > 1e-8, std, 1.0)
    centred = (both - mean) / spread
    time = np.arange(len(both)) / 100.0  # 10 ms frames
    time -= time.mean()
    slope = time @ (both - mean) / max(float(time @ time), 1e-8)
    values = [
        mean,
        std,
        (centred**3).mean(axis=0),
        (centred**4).mean(axis=0) - 3.0,
        both.min(axis=0),
        both.max(axis=0),
        *np.percentile(both, [1, 25, 50, 75, 99], axis=0),
        slope,
    ]
    return np.concatenate(values).astype(np.float32)


class FunctionalSet:
    """One set's extractor (built once per process, lazily)."""

    def __init__(self, name: str) -> None:
        if name not in SETS:
            raise SpeechEQError(f"unknown functionals set '{name}' (known: {', '.join(SETS)})")
        self.name = name
        self._smile: Any = None

    @property
    def smile(self) -> Any:
        if self._smile is None:
            try:
                import opensmile
            except ImportError:
                raise SpeechEQError(
                    f"the {self.name} functionals need openSMILE (pip install "
                    "'speecheq[opensmile]'; research and non-commercial use only)"
                ) from None
            feature_set = {
                "egemaps": opensmile.FeatureSet.eGeMAPSv02,
                "compare": opensmile.FeatureSet.ComParE_2016,
            }[self.name]
            self._smile = opensmile.Smile(
                feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals
            )
        return self._smile

    def names(self) -> list[str]:
        if self.name != "fbank":
            return list(self.smile.feature_names)
        columns = [f"fbank{i}" for i in range(80)] + ["voicing", "log_f0", "delta_log_f0"]
        columns += [f"d_{column}" for column in columns]
        return [f"{column}_{stat}" for stat in (*STATISTICS, "slope") for column in columns]

    def compute(self, samples: np.ndarray, rate: int, who: str) -> np.ndarray:
        """The functionals of one utterance's mono samples."""
        if self.name == "fbank":
            config = FeatureConfig(pitch=True, allow_upsample=True)
            return frame_statistics(compute_features(samples, rate, config, who=who))
        values = self.smile.process_signal(samples, rate).to_numpy(dtype=np.float32)[0]
        if not np.isfinite(values).all():
            raise SpeechEQError(f"{who}: openSMILE gave values that are not finite")
        return values


_SETS: dict[str, FunctionalSet] = {}
"""Each process's extractors, by set."""


def _compute_chunk(name: str, chunk: Sequence[tuple[str, str]]) -> list[tuple[str, np.ndarray]]:
    """The functionals of ``(utt, wav.scp value)`` pairs."""
    functional_set = _SETS.setdefault(name, FunctionalSet(name))
    results = []
    for utt, spec in chunk:
        samples, rate = read_audio(spec, utt)
        results.append((utt, functional_set.compute(samples, rate, f"utterance '{utt}'")))
    return results


def make_functionals(
    data_dir: str | Path,
    out_dir: str | Path,
    name: str,
    nj: int = 1,
    threads: int = 1,
    cluster: SlurmCluster | None = None,
) -> int:
    """Write the functionals of every utterance of ``data_dir`` to ``out_dir``, in ``nj``
    processes here or ``nj`` jobs on ``cluster``, each with ``threads`` CPU threads; return how
    many utterances were computed (0 when a finished folder was reused)."""
    data, out_dir = DataDir.load(data_dir), Path(out_dir)
    functional_set = _SETS.setdefault(name, FunctionalSet(name))
    if nj < 1:
        raise SpeechEQError(f"the number of jobs must be at least 1, got {nj}")
    conf = f"--set={name}\n"
    scp = out_dir / "functionals.scp"
    finished = (out_dir / "conf").is_file() and (out_dir / "conf").read_text() == conf
    if finished and scp.is_file() and set(read_table(scp)) == set(data.utts):
        note(f"{out_dir}: the {name} functionals of these utterances are there; kept")
        return 0
    wav = data.get("wav.scp")
    pairs = [(utt, wav[utt]) for utt in data.utts]
    chunks = [pairs[start : start + CHUNK] for start in range(0, len(pairs), CHUNK)]
    names = functional_set.names()
    make_folder(out_dir)
    (out_dir / "conf").unlink(missing_ok=True)  # written last: the folder is finished
    entries: dict[str, str] = {}
    with (
        atomic_write(out_dir / "functionals.ark", "wb") as ark,
        progress_bar(f"{name} functionals", len(pairs)) as advance,
    ):
        results = (
            _results(name, chunks, nj, threads, advance)
            if cluster is None
            else _cluster_results(name, pairs, nj, threads, cluster, out_dir / "jobs", advance)
        )
        for utt, values in results:
            if len(values) != len(names):
                raise RuntimeError(f"{utt}: {len(values)} functionals, expected {len(names)}")
            entries[utt] = f"{(out_dir / 'functionals.ark').resolve()}:" + str(
                write_matrix(ark, utt, values[None])
            )
    write_table(scp, entries)
    with atomic_write(out_dir / "names.txt") as out:
        out.writelines(f"{column}\n" for column in names)
    with atomic_write(out_dir / "conf") as out:
        out.write(conf)
    shutil.rmtree(out_dir / "jobs", ignore_errors=True)
    return len(pairs)


def _results(
    name: str,
    chunks: Sequence[Sequence[tuple[str, str]]],
    nj: int,
    threads: int,
    advance: Callable[[int], None],
) -> Iterator[tuple[str, np.ndarray]]:
    """Each utterance's ``(utt, values)``, in order, from ``nj`` worker processes (or this one)."""
    if nj == 1:
        for chunk in chunks:
            yield from _compute_chunk(name, chunk)
            advance(len(chunk))
        return
    pool = ProcessPoolExecutor(
        nj, mp_context=worker_context(), initializer=torch.set_num_threads, initargs=(threads,)
    )
    with pool:
        for chunk, results in zip(
            chunks, pool.map(_compute_chunk, [name] * len(chunks), chunks), strict=True
        ):
            yield from results
            advance(len(chunk))


def _cluster_results(
    name: str,
    pairs: Sequence[tuple[str, str]],
    nj: int,
    threads: int,
    cluster: SlurmCluster,
    folder: Path,
    advance: Callable[[int], None],
) -> Iterator[tuple[str, np.ndarray]]:
    """Each utterance's ``(utt, values)``, in order, from ``nj`` Slurm jobs of contiguous blocks;
    a block already written for the same set and utterances is reused."""
    size = -(-len(pairs) // nj)
    blocks = [pairs[start : start + size] for start in range(0, len(pairs), size)]
    paths = []
    for block in blocks:
        digest = hashlib.sha256(f"{name}\n{block}".encode()).hexdigest()[:16]
        paths.append(folder / f"{digest}.npy")
    calls = [
        (
            f"{name} functionals {index}/{len(blocks)}",
            partial(_write_block, name, block, path, threads),
        )
        for index, (block, path) in enumerate(zip(blocks, paths, strict=True), start=1)
        if not path.is_file()
    ]
    make_folder(folder)
    cluster.run_parts(calls, len(blocks), "functionals")
    for block, path in zip(blocks, paths, strict=True):
        yield from zip([utt for utt, _ in block], np.load(path), strict=True)
        advance(len(block))


def _write_block(name: str, block: Sequence[tuple[str, str]], path: Path, threads: int) -> None:
    """A Slurm job's work: the functionals of a block of utterances, as one ``.npy`` file."""
    torch.set_num_threads(threads)
    values = np.stack([values for _, values in _compute_chunk(name, block)])
    with atomic_write(path, "wb") as out:
        np.save(out, values)


def read_functionals(out_dir: str | Path, utts: Sequence[str]) -> np.ndarray:
    """The ``(len(utts), D)`` functionals of ``utts`` from a folder :func:`make_functionals`
    wrote; raise naming an utterance it lacks."""
    scp = Path(out_dir) / "functionals.scp"
    table = read_table(scp)
    missing = [utt for utt in utts if utt not in table]
    if missing:
        raise SpeechEQError(
            f"{scp}: no functionals for utterance '{missing[0]}' ({len(missing)} missing); "
            "compute them for the data directory the folds came from"
        )
    return np.stack([np.asarray(kaldiio.load_mat(table[utt]))[0] for utt in utts])
