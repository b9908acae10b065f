"""Reading audio named by a wav.scp entry: a file path, or a Kaldi pipe command (``cmd |``)."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from speecheq.console import warn
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write, path_problem


def is_pipe(spec: str) -> bool:
    """True if a wav.scp value is a Kaldi pipe command (it ends with ``|``)."""
    return spec.rstrip().endswith("|")


def read_audio(spec: str, utt: str | None = None) -> tuple[np.ndarray, int]:
    """Decode the audio of a wav.scp value to mono float32 samples in [-1, 1] and its rate.

    Multi-channel audio is averaged to mono. Missing, unreadable, corrupt or empty audio, and
    audio with samples that are not finite, raise :class:`SpeechEQError` naming the utterance
    (``utt``) and the path or command; a WAV file shorter than its header says is decoded as far
    as it goes, with a warning.
    """
    who = f"utterance '{utt}'" if utt else "audio"
    if is_pipe(spec):
        command = spec.rstrip()[:-1].strip()
        result = subprocess.run(command, shell=True, capture_output=True, check=False)
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip().splitlines()
            detail = f": {stderr[-1]}" if stderr else ""
            raise SpeechEQError(
                f"{who}: command '{command}' failed with status {result.returncode}{detail}"
            )
        source: io.BytesIO | str = io.BytesIO(result.stdout)
        name = f"the output of '{command}'"
    else:
        problem = path_problem(spec)
        if problem:
            raise SpeechEQError(f"{who}: audio file '{spec}' {problem}")
        source, name = spec, f"'{spec}'"
    mono, rate, truncation = _decode(source, who, name)
    if truncation:
        warn(f"{truncation} (decoded as far as it goes)")
    return mono, rate


def audio_from_bytes(data: bytes, who: str) -> tuple[np.ndarray, int]:
    """Decode a whole audio file held in memory to mono float32 samples and its rate, refusing
    (as :class:`SpeechEQError`) what :func:`read_audio` refuses, and a truncated WAV file."""
    if not data:
        raise SpeechEQError(f"{who}: no audio (an empty body)")
    mono, rate, truncation = _decode(io.BytesIO(data), who, "the audio")
    if truncation:
        raise SpeechEQError(truncation)
    return mono, rate


def _decode(source: io.BytesIO | str, who: str, name: str) -> tuple[np.ndarray, int, str]:
    """Mono samples, their rate, and a sentence saying the file is truncated ("" if whole)."""
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError) as err:
        reason = str(err).split(">: ", 1)[-1]  # not the reader's own name of an in-memory file
        raise SpeechEQError(f"{who}: cannot decode {name} ({reason})") from None
    if samples.shape[0] == 0:
        raise SpeechEQError(f"{who}: {name} has no samples")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).any(axis=1).sum())
        raise SpeechEQError(f"{who}: {name} has {bad} samples that are not finite (NaN or inf)")
    declared = wav_declared_frames(source)
    truncation = ""
    if declared is not None and declared > samples.shape[0]:
        truncation = (
            f"{who}: {name} is truncated: its header declares {declared / rate:.2f} s, the file "
            f"holds {samples.shape[0] / rate:.2f} s"
        )
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)
    return mono, int(rate), truncation


def float_samples(samples: np.ndarray, who: str) -> np.ndarray:
    """Samples as float32 in [-1, 1]: integer PCM (int16, int32, uint8) is scaled by its full
    range, as audio readers do; floats are taken as they are."""
    samples = np.asarray(samples)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128) / 128
    if np.issubdtype(samples.dtype, np.signedinteger):
        return (samples / float(-np.iinfo(samples.dtype).min)).astype(np.float32)
    if not np.issubdtype(samples.dtype, np.floating):
        raise SpeechEQError(f"{who}: samples of type {samples.dtype} are not audio")
    return samples.astype(np.float32, copy=False)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write mono samples in [-1, 1] as a 16-bit PCM WAV file, atomically; a failure (a full
    disk, a read-only folder) is a :class:`SpeechEQError` naming ``path``. The file is encoded
    in memory first, so that the disk's errors reach Python rather than the codec."""
    encoded = io.BytesIO()
    soundfile.write(encoded, samples, rate, format="WAV", subtype="PCM_16")
    with atomic_write(path, "wb") as out:
        out.write(encoded.getbuffer())


def wav_declared_frames(source: io.BytesIO | str) -> int | None:
    """The frames a WAV file's header declares (None when it is no WAV or declares none)."""
    if isinstance(source, io.BytesIO):
        head = source.getvalue()[:65536]
    else:
        with open(source, "rb") as handle:
            head = handle.read(65536)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, block_align = 12, 0
    while position + 8 <= len(head):
        chunk, size = (
            head[position : position + 4],
            struct.unpack("<I", head[position + 4 : position + 8])[0],
        )
        if chunk == b"fmt " and position + 22 <= len(head):
            block_align = struct.unpack("<H", head[position + 20 : position + 22])[0]
        if chunk == b"data":
            unknown = size in (0, 0xFFFFFFFF)  # streaming writers leave the size open
            return None if unknown or block_align == 0 else size // block_align
        position += 8 + size + size % 2
    return None
