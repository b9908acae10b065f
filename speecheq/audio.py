"""Reading audio named by a wav.scp entry: a file path, or a Kaldi pipe command (``cmd |``)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from speecheq.errors import SpeechEQError


def is_pipe(spec: str) -> bool:
    """True if a wav.scp value is a Kaldi pipe command (it ends with ``|``)."""
    return spec.rstrip().endswith("|")


def read_audio(spec: str, utt: str | None = None) -> tuple[np.ndarray, int]:
    """Decode the audio of a wav.scp value to mono float32 samples in [-1, 1] and its rate.

    Multi-channel audio is averaged to mono. Missing, unreadable, corrupt or empty audio raises
    :class:`SpeechEQError` naming the utterance (``utt``) and the path or command.
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
        path = Path(spec)
        if not path.is_file():
            raise SpeechEQError(f"{who}: audio file '{spec}' does not exist")
        source, name = spec, f"'{spec}'"
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
        raise SpeechEQError(f"{who}: cannot decode {name} ({err})") from None
    if samples.shape[0] == 0:
        raise SpeechEQError(f"{who}: {name} has no samples")
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)
    return mono, int(rate)
