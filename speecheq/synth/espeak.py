"""A ctypes binding to the eSpeak NG library and data bundled by the ``espeakng-loader`` wheel.

eSpeak NG keeps synthesis state in C globals (the pitch-flutter position, the harmonic tables
it interpolates between, a running amplitude maximum) that carry over from one request to the
next, so the same request gives slightly different samples depending on what was spoken
before. :meth:`Espeak.synthesize` therefore runs every request in a fresh fork of a process
that has loaded the library but never synthesised, and seeds the library's random generator
(breath noise) the same way each time: each result depends on its request alone.

Forking is cheap in a small process and slow in a large one (one that has loaded torch), so
:class:`EspeakProcess` runs the library in a small helper process (``python -m
speecheq.synth.espeak``) and talks to it through pipes. POSIX only (``os.fork``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import BinaryIO

import espeakng_loader
import numpy as np

from speecheq.errors import SpeechEQError

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 0x1
ESPEAK_SSML = 0x10
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
RANDOM_SEED = 1

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_FRAME = struct.Struct("<iI")
"""A helper's answer: status (0 ok, 1 error), payload length; then the payload."""
HELPER_ENDED = "the eSpeak NG helper process ended unexpectedly"


@dataclass(frozen=True)
class VoiceSettings:
    """What eSpeak NG is asked for: a voice name and its four prosody parameters.

    ``voice`` is ``<language>+<variant>`` (e.g. ``en-us+m3``, ``cmn+f2``); ``rate`` is in words
    per minute (80..450); ``pitch`` and ``pitch_range`` are 0..100 (50 is the voice's own);
    ``volume`` is 0..200 (100 is normal).
    """

    voice: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100


class Espeak:
    """The loaded library, initialised for synchronous synthesis into memory."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path()
        self.sample_rate: int = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0
        )
        if self.sample_rate <= 0:
            raise SpeechEQError(f"eSpeak NG failed to initialise with its data in {data_path}")
        self._lib = lib
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def synthesize(self, ssml: str, settings: VoiceSettings) -> np.ndarray:
        """Speak an SSML document; return int16 samples at :attr:`sample_rate`.

        Runs in a forked child (see the module docstring); an unknown voice or a failed
        synthesis raises :class:`SpeechEQError`.
        """
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            status = 1
            try:
                status = self._speak_into(write_fd, ssml, settings)
            finally:
                os._exit(status)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            pcm = pipe.read()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == 2:
            raise SpeechEQError(f"eSpeak NG has no voice '{settings.voice}'")
        if code != 0 or not pcm:
            raise SpeechEQError(
                f"eSpeak NG failed to synthesise {ssml!r} with voice '{settings.voice}'"
            )
        return np.frombuffer(pcm, dtype=np.int16)

    def _speak_into(self, fd: int, ssml: str, settings: VoiceSettings) -> int:
        """In the child: synthesise and write the PCM to ``fd``; return the exit status."""
        lib = self._lib
        lib.espeak_ng_SetRandSeed(RANDOM_SEED)
        if lib.espeak_SetVoiceByName(settings.voice.encode()) != 0:
            return 2
        for param, value in (
            (PARAM_RATE, settings.rate),
            (PARAM_PITCH, settings.pitch),
            (PARAM_RANGE, settings.pitch_range),
            (PARAM_VOLUME, settings.volume),
        ):
            lib.espeak_SetParameter(param, value, 0)
        text = ssml.encode()
        flags = ESPEAK_CHARS_UTF8 | ESPEAK_SSML
        if lib.espeak_Synth(text, len(text) + 1, 0, POS_CHARACTER, 0, flags, None, None) != 0:
            return 3
        lib.espeak_Synchronize()
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(b"".join(self._chunks))
        return 0

    def _collect(self, samples: object, count: int, _events: object) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(samples, 2 * count))
        return 0


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The helper's loop: first answer the sample rate, then one answer per request line.

    A request is a JSON object of :class:`VoiceSettings` fields plus ``ssml``; an answer is a
    :data:`_FRAME` header and the PCM bytes, or an error message with status 1.
    """

    def answer(status: int, payload: bytes) -> None:
        answers.write(_FRAME.pack(status, len(payload)) + payload)
        answers.flush()

    try:
        engine = Espeak()
    except SpeechEQError as err:
        answer(1, str(err).encode())
        return
    answer(0, struct.pack("<i", engine.sample_rate))
    for line in requests:
        request = json.loads(line)
        ssml = request.pop("ssml")
        try:
            answer(0, engine.synthesize(ssml, VoiceSettings(**request)).tobytes())
        except SpeechEQError as err:
            answer(1, str(err).encode())


class EspeakProcess:
    """eSpeak NG in a small helper process; use as a context manager, or call :meth:`close`."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "speecheq.synth.espeak"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        (self.sample_rate,) = struct.unpack("<i", self._answer())

    def synthesize(self, ssml: str, settings: VoiceSettings) -> np.ndarray:
        """Speak an SSML document; return int16 samples at :attr:`sample_rate`."""
        assert self._process.stdin is not None
        request = {"ssml": ssml, **dataclasses.asdict(settings)}
        try:
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise SpeechEQError(HELPER_ENDED) from None
        return np.frombuffer(self._answer(), dtype=np.int16)

    def close(self) -> None:
        """End the helper process (it exits when its input closes)."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait()

    def __enter__(self) -> EspeakProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _answer(self) -> bytes:
        assert self._process.stdout is not None
        header = self._process.stdout.read(_FRAME.size)
        if len(header) < _FRAME.size:
            raise SpeechEQError(HELPER_ENDED)
        status, length = _FRAME.unpack(header)
        payload = self._process.stdout.read(length)
        if status != 0:
            raise SpeechEQError(payload.decode())
        return payload


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the helper ends when its input closes
    serve(sys.stdin.buffer, sys.stdout.buffer)
