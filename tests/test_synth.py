"""The synthetic mini corpus: plan balance, determinism, measurable prosody, preparer, CLI."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speecheq.corpora import prepare
from speecheq.data.check import validate
from speecheq.errors import SpeechEQError
from speecheq.synth.corpus import (
    SPEAKERS,
    generate_corpus,
    make_utterance,
    plan_corpus,
    synthesize_utterances,
)
from speecheq.synth.espeak import EspeakProcess, VoiceSettings

EMOTIONS = ("happy", "angry", "sad", "fear")
HEADER = "utt speaker gender language emotion intensity style text arousal valence dominance wav"


def median_f0(samples: np.ndarray, rate: int = 16000) -> float:
    """Median F0 (Hz) of the loud frames, by the cumulative-mean-normalised difference (YIN)."""
    frame, hop, low, high = int(0.04 * rate), int(0.01 * rate), rate // 400, rate // 60
    frames = np.lib.stride_tricks.sliding_window_view(samples, frame)[::hop]
    energy = (frames**2).mean(axis=1)
    frames = frames[energy > 0.1 * energy.max()]
    width = frame - high
    diff = np.stack(
        [
            ((frames[:, :width] - frames[:, lag : lag + width]) ** 2).sum(axis=1)
            for lag in range(1, high + 1)
        ],
        axis=1,
    )
    cmnd = diff * np.arange(1, high + 1) / np.maximum(np.cumsum(diff, axis=1), 1e-12)
    f0s = []
    for row in cmnd:
        below = np.nonzero(row[low - 1 :] < 0.2)[0]
        if below.size:
            lag = low - 1 + below[0]
            while lag + 1 < high and row[lag + 1] < row[lag]:
                lag += 1
            f0s.append(rate / (lag + 1))
    return float(np.median(f0s))


def rms_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(samples**2))))


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- the plan (no synthesis) -----------------------------------------------------------------


def test_plan_is_the_full_crossing_and_any_prefix_is_nearly_balanced() -> None:
    plan = plan_corpus(480)
    cells = Counter((u.speaker.id, u.language, u.style, u.emotion, u.intensity) for u in plan)
    emotional = {cell: n for cell, n in cells.items() if cell[3] != "neutral"}
    neutral = {cell: n for cell, n in cells.items() if cell[3] == "neutral"}
    assert len(emotional) == 8 * 2 * 2 * 4 * 3 and set(emotional.values()) == {1}
    assert len(neutral) == 8 * 2 * 2 and set(neutral.values()) == {3}
    assert len({u.utt for u in plan}) == 480
    assert all(u.utt.startswith(f"{u.speaker.id}-{u.language}-") for u in plan)
    prefix = plan_corpus(24)
    assert set(Counter(u.speaker.id for u in prefix).values()) == {3}
    assert Counter(u.language for u in prefix) == {"en": 12, "zh": 12}
    assert Counter(u.style for u in prefix) == {"acted": 12, "natural": 12}
    assert (
        max(Counter(u.emotion for u in prefix).values())
        - min(Counter(u.emotion for u in prefix).values())
        <= 1
    )


def test_avd_moves_from_neutral_toward_the_centroid_with_intensity() -> None:
    def avd(emotion: str, intensity: int, style: str = "acted") -> np.ndarray:
        return np.array(make_utterance(0, SPEAKERS[0], "en", 0, emotion, intensity, style).avd)

    assert np.allclose(avd("neutral", 0), 3, atol=0.3)
    angry = avd("angry", 3)
    assert angry[0] > 4 and angry[1] < 2 and angry[2] > 4
    assert avd("sad", 3)[0] < 2
    for emotion in EMOTIONS:
        low, high = (np.abs(avd(emotion, level) - 3).sum() for level in (1, 3))
        assert high > 2 * low
        assert np.abs(avd(emotion, 3, "natural") - 3).sum() < np.abs(avd(emotion, 3) - 3).sum()


def test_natural_style_pauses_between_phrases_and_acted_does_not() -> None:
    def ssml(style: str) -> str:
        return make_utterance(0, SPEAKERS[0], "en", 0, "happy", 2, style).rendering.ssml

    assert "<break" in ssml("natural") and "<prosody" in ssml("natural")
    assert "<break" not in ssml("acted")


def test_bad_arguments_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SpeechEQError, match="at least 1, got 0"):
        plan_corpus(0)
    with pytest.raises(SpeechEQError, match="processes must be at least 1"):
        synthesize_utterances(plan_corpus(1), tmp_path, nj=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(SpeechEQError, match="file: cannot write it: it is a file, not a folder"):
        generate_corpus(tmp_path / "file", num_utts=1)


# --- eSpeak NG ---------------------------------------------------------------------------------


def test_espeak_output_depends_on_the_request_alone() -> None:
    first = VoiceSettings("en-us+m3", pitch=40)
    second = VoiceSettings("cmn+f2", rate=200)
    with EspeakProcess() as engine:
        assert engine.sample_rate == 22050
        before = engine.synthesize("<speak>Good morning.</speak>", first)
        engine.synthesize("<speak>你好。</speak>", second)
        after = engine.synthesize("<speak>Good morning.</speak>", first)
        assert len(before) > 0.3 * engine.sample_rate and np.array_equal(before, after)
        with pytest.raises(SpeechEQError, match="has no voice 'xx\\+m1'"):
            engine.synthesize("<speak>x</speak>", VoiceSettings("xx+m1"))


# --- a generated corpus ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-utterance corpus, seed 0, generated with 2 processes."""
    out = tmp_path_factory.mktemp("mini") / "corpus"
    report = generate_corpus(out, num_utts=24, seed=0, nj=2)
    assert report.utterances == 24 and set(report.speakers.values()) == {3}
    return out


def test_generated_files_match_the_metadata(corpus: Path) -> None:
    lines = (corpus / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert " ".join(header) == HEADER
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    assert len(rows) == 24
    for row in rows:
        info = soundfile.info(corpus / row["wav"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.8 < info.duration < 8
        assert row["wav"] == f"wav/{row['speaker']}/{row['utt']}.wav"
        assert all(1 <= float(row[name]) <= 5 for name in ("arousal", "valence", "dominance"))
    assert {row["gender"] for row in rows} == {"m", "f"}
    assert not list(corpus.rglob(".*.tmp"))


def test_same_seed_gives_the_same_bytes_whatever_nj(corpus: Path, tmp_path: Path) -> None:
    generate_corpus(tmp_path / "again", num_utts=24, seed=0, nj=1)
    assert file_bytes(tmp_path / "again") == file_bytes(corpus)
    generate_corpus(tmp_path / "other", num_utts=6, seed=1, nj=2)
    other = file_bytes(tmp_path / "other")
    original = file_bytes(corpus)
    wavs = [name for name in other if name.endswith(".wav")]
    assert len(wavs) == 6 and all(other[name] != original[name] for name in wavs)


def test_preparer_round_trip_validates(corpus: Path, tmp_path: Path) -> None:
    data = prepare("mini", corpus)
    data.save(tmp_path / "data")
    assert validate(tmp_path / "data", check_audio=True) == []
    assert len(data.utts) == 24 and len(data.speakers) == 8
    assert Counter(data.get("spk2gender").values()) == {"m": 4, "f": 4}
    assert set(data.get("utt2nat").values()) == {"acted", "natural"}
    assert set(data.get("utt2lang").values()) == {"en", "zh"}
    assert set(data.get("utt2emo").values()) == {"neutral", "happy", "angry", "sad", "fear"}
    for utt, emotion in data.get("utt2emo").items():
        assert (data.get("utt2intensity")[utt] == "0") == (emotion == "neutral")
        assert len(data.get("utt2avd")[utt].split()) == 3
        if data.get("utt2lang")[utt] == "zh":
            assert " " not in data.get("text")[utt]
    assert all(Path(path).is_absolute() for path in data.get("wav.scp").values())


def _corrupt_line(lineno: int, edit: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    def corrupt(lines: list[str]) -> None:
        cells = lines[lineno - 1].split("\t")
        edit(cells)
        lines[lineno - 1] = "\t".join(cells)

    return corrupt


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_corrupt_line(3, lambda cells: cells.pop(7)), r"metadata.tsv:3: expected 12 .* found 11"),
        (
            _corrupt_line(5, lambda cells: cells.__setitem__(4, "furious")),
            r"metadata.tsv:5: unknown emotion category 'furious'",
        ),
        (
            _corrupt_line(4, lambda cells: cells.__setitem__(5, "7")),
            r"metadata.tsv:4: unknown intensity level '7'",
        ),
        (
            _corrupt_line(6, lambda cells: cells.__setitem__(6, "improvised")),
            r"metadata.tsv:6: unknown naturalness 'improvised'",
        ),
        (
            _corrupt_line(2, lambda cells: cells.__setitem__(9, "high")),
            r"metadata.tsv:2: arousal, valence and dominance must be numbers",
        ),
        (
            _corrupt_line(7, lambda cells: cells.__setitem__(11, "wav/none.wav")),
            r"metadata.tsv:7: audio file .*none.wav' does not exist",
        ),
        (
            _corrupt_line(1, lambda cells: cells.remove("style")),
            r"metadata.tsv:1: the header lacks column\(s\) style",
        ),
    ],
)
def test_bad_metadata_names_the_file_and_line(
    corpus: Path, tmp_path: Path, corrupt: Callable[[list[str]], None], message: str
) -> None:
    (tmp_path / "wav").symlink_to(corpus / "wav")
    lines = (corpus / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    corrupt(lines)
    (tmp_path / "metadata.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SpeechEQError, match=message):
        prepare("mini", tmp_path)


def test_missing_metadata_is_a_layout_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechEQError, match="no mini corpus found: expected metadata.tsv"):
        prepare("mini", tmp_path)


# --- prosody, measured on the audio -----------------------------------------------------------


Measures = dict[tuple[str, str, int], tuple[float, float]]
SPEAKER_IDS = ("spk01", "spk02", "spk05", "spk06")


@pytest.fixture(scope="module")
def measures(tmp_path_factory: pytest.TempPathFactory) -> Measures:
    """Two male and two female speakers say one sentence, acted: neutral and each emotion at
    intensities 1 and 3. (speaker, emotion, intensity) -> (median F0 in Hz, level in dB)."""
    out = tmp_path_factory.mktemp("voices")
    cases = [("neutral", 0)] + [(emotion, level) for emotion in EMOTIONS for level in (1, 3)]
    speakers = [speaker for speaker in SPEAKERS if speaker.id in SPEAKER_IDS]
    plan = [
        make_utterance(index, speaker, "en", 0, emotion, level, "acted")
        for index, (speaker, (emotion, level)) in enumerate(
            (speaker, case) for speaker in speakers for case in cases
        )
    ]
    synthesize_utterances(plan, out, nj=2)
    samples = {(u.speaker.id, u.emotion, u.intensity): soundfile.read(out / u.wav)[0] for u in plan}
    return {key: (median_f0(audio), rms_db(audio)) for key, audio in samples.items()}


def test_angry_is_louder_than_sad(measures: Measures) -> None:
    for spk in SPEAKER_IDS:
        assert measures[(spk, "angry", 3)][1] - measures[(spk, "sad", 3)][1] > 10


def test_happy_is_higher_pitched_than_sad(measures: Measures) -> None:
    for spk in SPEAKER_IDS:
        assert measures[(spk, "happy", 3)][0] > 1.25 * measures[(spk, "sad", 3)][0]


def test_female_voices_are_higher_pitched(measures: Measures) -> None:
    male = [measures[(spk, "neutral", 0)][0] for spk in ("spk01", "spk02")]
    female = [measures[(spk, "neutral", 0)][0] for spk in ("spk05", "spk06")]
    assert all(70 < f0 < 140 for f0 in male) and all(150 < f0 < 300 for f0 in female)


def test_high_intensity_departs_further_from_neutral(measures: Measures) -> None:
    def departure(spk: str, emotion: str, level: int) -> float:
        f0, db = measures[(spk, emotion, level)]
        neutral_f0, neutral_db = measures[(spk, "neutral", 0)]
        return float(np.hypot(12 * np.log2(f0 / neutral_f0), db - neutral_db))

    for emotion in EMOTIONS:
        for spk in SPEAKER_IDS:
            assert departure(spk, emotion, 3) > 1.5 * departure(spk, emotion, 1), (spk, emotion)


# --- the command line --------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_generates_prepares_and_validates(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from speecheq.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["synth", str(tmp_path / "corpus"), "--num-utts", "24"])
    assert result.exit_code == 0, result.output
    assert "utterances" in result.stdout and "spk08" in result.stdout
    data = tmp_path / "data" / "all"
    result = runner.invoke(
        app, ["prepare", "mini", str(data), "--corpus-dir", str(tmp_path / "corpus")]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "validate", str(data)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["synth", str(tmp_path / "corpus"), "--num-utts", "0"])
    assert result.exit_code != 0
