"""Audio as it arrives, for streaming: raw PCM from a pipe, a file still being written, or a
microphone (the optional ``sounddevice`` extra). Each source yields float32 sample chunks of
shape ``(samples, channels)``."""

from __future__ import annotations

import os
import queue
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from speecheq.errors import SpeechEQError

PCM_FORMATS: dict[str, np.dtype] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
"""Raw sample formats a stream may carry: 16-bit signed integers or 32-bit floats, little
endian, channels interleaved."""
CHUNK_SECONDS = 0.1
"""Audio read at a time (at most)."""
POLL_SECONDS = 0.05
"""How often a followed file is checked for new audio."""


@dataclass(frozen=True)
class PcmLayout:
    """How raw samples are laid out."""

    rate: int
    format: str = "s16le"
    channels: int = 1

    def __post_init__(self) -> None:
        if self.format not in PCM_FORMATS:
            raise SpeechEQError(
                f"--format must be one of {', '.join(PCM_FORMATS)}, got '{self.format}'"
            )
        if self.rate < 1000 or self.channels < 1:
            raise SpeechEQError(
                f"--rate must be at least 1000 and --channels at least 1, got {self.rate} and "
                f"{self.channels}"
            )

    @property
    def frame_bytes(self) -> int:
        return PCM_FORMATS[self.format].itemsize * self.channels

    @property
    def chunk_bytes(self) -> int:
        return max(1, int(self.rate * CHUNK_SECONDS)) * self.frame_bytes

    def decode(self, data: bytes) -> np.ndarray:
        """Whole frames of raw bytes as float32 ``(samples, channels)``."""
        samples = np.frombuffer(data, dtype=PCM_FORMATS[self.format])
        if self.format == "s16le":
            samples = samples / 32768.0
        return samples.astype(np.float32).reshape(-1, self.channels)


def pcm_chunks(read: Callable[[int], bytes], layout: PcmLayout) -> Iterator[np.ndarray]:
    """Decoded chunks of what ``read(n)`` returns until it returns nothing; a last partial
    frame (the stream cut inside a sample) is dropped."""
    leftover = b""
    while data := read(layout.chunk_bytes):
        data = leftover + data
        usable = len(data) // layout.frame_bytes * layout.frame_bytes
        leftover = data[usable:]
        if usable:
            yield layout.decode(data[:usable])


def stdin_chunks(layout: PcmLayout) -> Iterator[np.ndarray]:
    """Raw PCM from standard input, each read returning as soon as some audio is there."""
    descriptor = 0
    return pcm_chunks(lambda size: os.read(descriptor, size), layout)


def follow_file(
    path: Path, layout: PcmLayout, idle: float
) -> tuple[PcmLayout, Iterator[np.ndarray]]:
    """A file that may still be written (raw PCM as ``layout`` says, or a WAV file, whose
    header gives the layout): its layout, and chunks of it as it grows, until it has not grown
    for ``idle`` seconds."""
    try:
        handle = path.open("rb")
    except OSError as err:
        raise SpeechEQError(f"{path}: cannot read it ({err.strerror})") from None
    if _wait_for(handle, 12, idle)[:4] == b"RIFF":
        layout = _wav_layout(handle, path, idle)
    else:
        handle.seek(0)

    def read(size: int) -> bytes:
        waited = 0.0
        while not (data := handle.read(size)) and waited < idle:
            time.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        return data

    def chunks() -> Iterator[np.ndarray]:
        with handle:
            yield from pcm_chunks(read, layout)

    return layout, chunks()


def _wait_for(handle: BinaryIO, size: int, idle: float) -> bytes:
    """``size`` bytes from where ``handle`` is, waiting up to ``idle`` seconds for them."""
    data, waited = b"", 0.0
    while len(data) < size:
        more = handle.read(size - len(data))
        if not more:
            if waited >= idle:
                break
            time.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        data += more
    return data


def _wav_layout(handle: BinaryIO, path: Path, idle: float) -> PcmLayout:
    """The layout a WAV header declares, ``handle`` left at its first sample. Only 16-bit PCM
    and 32-bit float WAV files can be followed (their size fields may still be 0)."""
    handle.seek(12)
    layout = None
    while len(header := _wait_for(handle, 8, idle)) == 8:
        kind, size = header[:4], struct.unpack("<I", header[4:])[0]
        if kind == b"data":
            if layout is None:
                break
            return layout
        body = _wait_for(handle, size + size % 2, idle)
        if kind == b"fmt " and len(body) >= 16:
            code, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if code == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the subformat
                code = struct.unpack("<H", body[24:26])[0]
            formats = {(1, 16): "s16le", (3, 32): "f32le"}
            if (code, bits) not in formats:
                raise SpeechEQError(
                    f"{path}: only 16-bit PCM or 32-bit float WAV files can be streamed "
                    f"(format {code}, {bits} bits)"
                )
            layout = PcmLayout(rate, formats[code, bits], channels)
    raise SpeechEQError(f"{path}: a WAV header without its format or data chunk")


def microphone_chunks(layout: PcmLayout) -> Iterator[np.ndarray]:
    """The default input device, through ``sounddevice`` (the ``mic`` extra), until
    interrupted."""
    try:
        import sounddevice
    except (ImportError, OSError) as err:
        raise SpeechEQError(
            f"--mic needs the sounddevice package and PortAudio: pip install 'speecheq[mic]' "
            f"({err})"
        ) from None
    arrived: queue.Queue[np.ndarray] = queue.Queue()
    try:
        stream = sounddevice.InputStream(
            samplerate=layout.rate,
            channels=layout.channels,
            dtype="float32",
            blocksize=int(layout.rate * CHUNK_SECONDS),
            callback=lambda block, *_: arrived.put(block.copy()),
        )
    except Exception as err:  # PortAudio's errors: no device, a rate it cannot open
        raise SpeechEQError(f"the microphone cannot be opened: {err}") from None
    with stream:
        while True:
            yield arrived.get()
