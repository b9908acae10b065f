"""Feature options: a frozen dataclass read from and written to Kaldi-style conf files.

A conf file has one ``--option-name=value`` per line, as Kaldi's ``conf/fbank.conf``; ``#``
starts a comment. Option names are those of Kaldi's ``compute-fbank-feats`` (a bool option
given without a value means true), plus ``--pitch``, ``--min-f0`` and ``--max-f0`` for the
optional pitch features. Where a default differs from Kaldi's it is on purpose: 80 mel bins,
no dither (features are deterministic, the same at training and inference time), and
downsampling allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from speecheq.errors import SpeechEQError

WINDOW_TYPES: tuple[str, ...] = ("povey", "hamming", "hanning", "rectangular", "blackman")


@dataclass(frozen=True)
class FeatureConfig:
    """The options of log-mel filterbank (and optional pitch) features.

    Times are in milliseconds, frequencies in Hz. Invalid values raise ``ValueError``; read
    conf files with :meth:`from_conf` / :meth:`parse`, which name the file and line instead.
    """

    sample_frequency: float = 16000.0
    frame_length: float = 25.0
    frame_shift: float = 10.0
    dither: float = 0.0
    preemphasis_coefficient: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    round_to_power_of_two: bool = True
    blackman_coeff: float = 0.42
    snip_edges: bool = True
    allow_downsample: bool = True
    allow_upsample: bool = False
    num_mel_bins: int = 80
    low_freq: float = 20.0
    high_freq: float = 0.0
    vtln_low: float = 100.0
    vtln_high: float = -500.0
    vtln_warp: float = 1.0
    use_energy: bool = False
    energy_floor: float = 0.0
    raw_energy: bool = True
    htk_compat: bool = False
    use_log_fbank: bool = True
    use_power: bool = True
    subtract_mean: bool = False
    pitch: bool = False
    min_f0: float = 50.0
    max_f0: float = 400.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.type in ("int", "float"):
                value = getattr(self, field.name)
                object.__setattr__(
                    self, field.name, int(value) if field.type == "int" else float(value)
                )
        nyquist = self.sample_frequency / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        checks = [
            (
                self.sample_frequency > 0 and float(self.sample_frequency).is_integer(),
                "--sample-frequency must be a positive whole number of Hz",
            ),
            (self.frame_shift > 0, "--frame-shift must be positive"),
            (self.window_size >= 2, "--frame-length must span at least 2 samples"),
            (
                self.padded_window_size % 2 == 0,
                "--frame-length must give an even number of samples unless "
                "--round-to-power-of-two=true",
            ),
            (self.dither >= 0, "--dither must not be negative"),
            (
                0 <= self.preemphasis_coefficient <= 1,
                "--preemphasis-coefficient must be in [0, 1]",
            ),
            (self.window_type in WINDOW_TYPES, f"--window-type must be one of {WINDOW_TYPES}"),
            (self.num_mel_bins > 3, "--num-mel-bins must be at least 4"),
            (
                0 <= self.low_freq < high <= nyquist,
                f"--low-freq and --high-freq must satisfy 0 <= low < high <= {nyquist:g} "
                "(a high frequency <= 0 is an offset from the Nyquist frequency)",
            ),
            (self.vtln_warp > 0, "--vtln-warp must be positive"),
            (self.energy_floor >= 0, "--energy-floor must not be negative"),
            (
                0 < self.min_f0 < self.max_f0 <= nyquist,
                f"--min-f0 and --max-f0 must satisfy 0 < min < max <= {nyquist:g}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        empty = self.empty_mel_bins(self.low_freq, high)
        if empty:
            raise ValueError(
                f"--num-mel-bins={self.num_mel_bins} is too many for a "
                f"{self.padded_window_size}-point FFT between {self.low_freq:g} and {high:g} Hz: "
                f"{empty} bins would cover no FFT bin (refused, as by Kaldi; use fewer mel bins "
                "or a longer frame)"
            )

    def empty_mel_bins(self, low: float, high: float) -> int:
        """How many triangular mel filters contain no FFT bin centre (Kaldi's layout)."""
        fft_bins = self.padded_window_size // 2
        bin_mels = [_mel(index * self.sample_frequency / self.padded_window_size)
                    for index in range(fft_bins)]  # fmt: skip
        low_mel, high_mel = _mel(low), _mel(high)
        step = (high_mel - low_mel) / (self.num_mel_bins + 1)
        empty = 0
        for index in range(self.num_mel_bins):
            left, right = low_mel + index * step, low_mel + (index + 2) * step
            empty += not any(left < mel < right for mel in bin_mels)
        return empty

    @property
    def window_size(self) -> int:
        """Samples per frame."""
        return int(self.sample_frequency * self.frame_length / 1000)

    @property
    def window_shift(self) -> int:
        """Samples between the starts of consecutive frames."""
        return int(self.sample_frequency * self.frame_shift / 1000)

    @property
    def padded_window_size(self) -> int:
        """The FFT length: the frame, zero-padded to a power of two if so configured."""
        size = self.window_size
        return 1 << (size - 1).bit_length() if self.round_to_power_of_two else size

    @property
    def dim(self) -> int:
        """The feature dimension: mel bins, plus energy, plus 3 pitch features."""
        return self.num_mel_bins + int(self.use_energy) + (3 if self.pitch else 0)

    def num_frames(self, num_samples: int) -> int:
        """Frames computed from ``num_samples`` samples at the sample frequency (Kaldi's rule)."""
        if self.snip_edges:
            if num_samples < self.window_size:
                return 0
            return 1 + (num_samples - self.window_size) // self.window_shift
        return (num_samples + self.window_shift // 2) // self.window_shift

    @classmethod
    def from_conf(cls, path: str | Path) -> FeatureConfig:
        """Read a Kaldi-style conf file; a bad line raises :class:`SpeechEQError` naming it."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpeechEQError(f"{path}: feature conf file not found") from None
        except UnicodeDecodeError:
            raise SpeechEQError(f"{path}: feature conf file is not UTF-8 text") from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<conf>") -> FeatureConfig:
        """Parse conf text; ``source`` names it (e.g. the file) in error messages.

        An option given twice takes its last value, as in Kaldi.
        """
        fields = {field.name: field for field in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{source}:{lineno}"
            option, has_value, value = line.partition("=")
            name = option[2:].replace("-", "_")
            if not option.startswith("--") or " " in line:
                raise SpeechEQError(f"{where}: malformed line {raw!r}, expected '--option=value'")
            if name not in fields:
                raise SpeechEQError(f"{where}: unknown feature option '{option}'")
            values[name] = _parse_value(value, fields[name].type, has_value != "", option, where)
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as err:
            raise SpeechEQError(f"{source}: {err}") from None

    def to_conf(self) -> str:
        """Every option, one ``--option=value`` line each; :meth:`parse` reads it back equal."""
        lines = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, float):
                value = repr(value)
            lines.append(f"--{field.name.replace('_', '-')}={value}\n")
        return "".join(lines)


def _parse_value(value: str, kind: object, has_value: bool, option: str, where: str) -> object:
    """Convert the text of one option to its field's type (given as the annotation string)."""
    if kind == "bool":
        if not has_value:
            return True
        lowered = value.lower()
        if lowered in ("true", "t", "1"):
            return True
        if lowered in ("false", "f", "0"):
            return False
        raise SpeechEQError(f"{where}: {option} expects true or false, got '{value}'")
    if kind == "str":
        return value
    try:
        number = int(value) if kind == "int" else float(value)
    except ValueError:
        raise SpeechEQError(f"{where}: {option} expects a number, got '{value}'") from None
    if not math.isfinite(number):
        raise SpeechEQError(f"{where}: {option} expects a finite number, got '{value}'")
    return number


def _mel(hz: float) -> float:
    """Kaldi's mel scale."""
    return 1127.0 * math.log(1.0 + hz / 700.0)
