"""Corpus preparers against small fake corpora written in each corpus's real layout and formats."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speecheq.corpora import corpus_module, corpus_names, prepare
from speecheq.data.check import validate
from speecheq.data.datadir import DataDir
from speecheq.data.folds import split_folds
from speecheq.errors import SpeechEQError
from speecheq.labels import ClassMap
from tests.conftest import write_tone

PREPARERS = ("casia", "cremad", "csv", "emodb", "esd", "iemocap", "ravdess")


class Audio:
    """Tiny real WAV files, written once and copied: mono 16 kHz, or stereo 48 kHz."""

    def __init__(self, root: Path) -> None:
        self.mono = write_tone(root / "mono.wav", seconds=0.05).read_bytes()
        stereo = root / "stereo.wav"
        tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(2400) / 48000)
        soundfile.write(stereo, np.stack([tone, -tone], axis=1), 48000, subtype="PCM_16")
        self.stereo = stereo.read_bytes()
        self.mono48k = write_tone(root / "mono48k.wav", seconds=0.05, rate=48000).read_bytes()

    def write(self, path: Path, kind: str = "mono") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(getattr(self, kind))
        return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Audio:
    return Audio(tmp_path_factory.mktemp("audio"))


def prepared(name: str, corpus_dir: Path, out: Path) -> DataDir:
    """Prepare, save, validate (decoding every file) and load back a corpus."""
    data = prepare(name, corpus_dir)
    data.save(out)
    assert [str(p) for p in validate(out, check_audio=True)] == []
    return DataDir.load(out)


def check_folds(data: DataDir, **protocol: object) -> None:
    """Folds of the protocol are speaker-independent and test every utterance exactly once."""
    folds = split_folds(data, valid_fraction=0.5, **protocol)  # type: ignore[arg-type]
    assert len(folds) >= 2
    tested: list[str] = []
    for fold in folds:
        test_speakers = set(fold.test.speakers)
        assert not test_speakers & set(fold.train.speakers)
        assert not test_speakers & set(fold.valid.speakers)
        assert set(fold.valid.speakers) <= set(data.speakers) - test_speakers
        assert not set(fold.valid.utts) & set(fold.train.utts)
        tested += fold.test.utts
    assert sorted(tested) == data.utts


def test_every_preparer_is_a_corpus_module_with_a_description() -> None:
    assert set(PREPARERS) <= set(corpus_names())
    for name in corpus_names():
        doc = corpus_module(name).__doc__
        assert doc and doc.splitlines()[0].endswith(".")


# --- CASIA ---------------------------------------------------------------------------------

CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def write_casia(root: Path, audio: Audio, speakers: tuple[str, ...]) -> Path:
    lines = [f"{n}. 第{n}句话。" + (" " if n % 3 == 0 else "") for n in range(201, 251)]
    root.mkdir(parents=True)
    (root / "相同的文本201--250.txt").write_bytes("\n".join(lines).encode("gb18030") + b"\n")
    for spk in speakers:
        for emotion in CASIA_EMOTIONS:
            for n in range(201, 251):
                audio.write(root / spk / emotion / f"{n}.wav")
                if n != 230:
                    (root / spk / emotion / f"{n}.lab").write_text("0 1000 SIL\n")
    return root


def test_casia(tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_casia(tmp_path / "casia", audio, ("liuchanhg", "ZhaoZuoxiang", "guest"))
    data = prepared("casia", corpus, tmp_path / "data")
    assert "warning" not in capsys.readouterr().err
    assert len(data.utts) == 900 and data.speakers == ["ZhaoZuoxiang", "guest", "liuchanhg"]
    assert Counter(data.get("utt2emo").values()) == {emotion: 150 for emotion in CASIA_EMOTIONS}
    assert data.get("spk2gender") == {"ZhaoZuoxiang": "m", "liuchanhg": "f"}
    assert data.get("text")["liuchanhg-sad-201"] == "第201句话。"
    assert data.get("text")["guest-fear-204"] == "第204句话。"  # trailing space dropped
    assert set(data.get("utt2lang").values()) == {"zh"}
    assert set(data.get("utt2nat").values()) == {"acted"}
    assert Path(data.get("wav.scp")["guest-angry-250"]).is_absolute()
    check_folds(data)


def test_casia_partly_missing_and_unknown_emotion(
    tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_casia(tmp_path / "casia", audio, ("liuchanhg", "wangzhe"))
    for n in (201, 202, 203):
        (corpus / "wangzhe" / "sad" / f"{n}.wav").unlink()
    data = prepare("casia", corpus)
    assert len(data.utts) == 597
    assert "casia: 3 of the 600 utterances" in capsys.readouterr().err
    (corpus / "wangzhe" / "bored").mkdir()
    with pytest.raises(SpeechEQError, match="unknown emotion folder 'bored'"):
        prepare("casia", corpus)


def test_casia_malformed_text_line_names_file_and_line(tmp_path: Path, audio: Audio) -> None:
    corpus = write_casia(tmp_path / "casia", audio, ("liuchanhg",))
    text = corpus / "相同的文本201--250.txt"
    text.write_bytes(text.read_bytes() + "没有编号的一行\n".encode("gb18030"))
    with pytest.raises(SpeechEQError, match=r"201--250\.txt:51: malformed line"):
        prepare("casia", corpus)


# --- EmoDB ---------------------------------------------------------------------------------


def write_emodb(root: Path, audio: Audio) -> Path:
    names = [
        "03a01Fa",
        "03a01Wa",
        "03b10Nc",
        "08a02Lb",
        "08a05Ea",
        "08b01Ad",
        "09b03Ta",
        "09b09Wb",
        "16a04Nb",
        "16a07Fa",
    ]
    for name in names:
        audio.write(root / "wav" / f"{name}.wav")
        (root / "silb" / f"{name}.silb").parent.mkdir(parents=True, exist_ok=True)
        (root / "silb" / f"{name}.silb").write_bytes("0.1\tstück\n".encode("latin-1"))
    (root / "erkennung.txt").write_bytes("Nr.\tSatz\terkannt\tnatürlich\n".encode("latin-1"))
    (root / "erklaerung.txt").write_bytes("Hörer und Natürlichkeit\n".encode("latin-1"))
    return root


def test_emodb(tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared("emodb", write_emodb(tmp_path / "emodb", audio), tmp_path / "data")
    assert "emodb: 525 of the 535 utterances of the distribution are missing" in (
        capsys.readouterr().err
    )
    assert data.speakers == ["03", "08", "09", "16"]
    assert data.get("spk2gender") == {"03": "m", "08": "f", "09": "f", "16": "f"}
    assert data.get("utt2emo") == {
        "03a01Fa": "happy",
        "03a01Wa": "angry",
        "03b10Nc": "neutral",
        "08a02Lb": "boredom",
        "08a05Ea": "disgust",
        "08b01Ad": "fear",
        "09b03Ta": "sad",
        "09b09Wb": "angry",
        "16a04Nb": "neutral",
        "16a07Fa": "happy",
    }
    assert data.get("text")["03a01Fa"] == "Der Lappen liegt auf dem Eisschrank."
    assert data.get("text")["08b01Ad"].endswith("unter dem Tisch stehen?")
    assert set(data.get("utt2lang").values()) == {"de"}
    check_folds(data)


def test_emodb_badly_named_file(tmp_path: Path, audio: Audio) -> None:
    corpus = write_emodb(tmp_path / "emodb", audio)
    audio.write(corpus / "wav" / "03a01Xa.wav")
    with pytest.raises(SpeechEQError, match="03a01Xa.wav: unknown emotion letter 'X'"):
        prepare("emodb", corpus)


# --- RAVDESS -------------------------------------------------------------------------------


def ravdess_names(actor: int) -> list[str]:
    """The 60 speech files of an actor."""
    names = []
    for emotion in range(1, 9):
        for intensity in (1,) if emotion == 1 else (1, 2):
            for statement in (1, 2):
                for repetition in (1, 2):
                    names.append(
                        f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-"
                        f"{repetition:02d}-{actor:02d}"
                    )
    return names


def write_ravdess(root: Path, audio: Audio, actors: tuple[int, ...]) -> Path:
    for actor in actors:
        for index, name in enumerate(ravdess_names(actor)):
            kind = "stereo" if index % 7 == 0 else "mono48k"
            audio.write(root / f"Actor_{actor:02d}" / f"{name}.wav", kind)
    return root


def test_ravdess(tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_ravdess(tmp_path / "ravdess", audio, (1, 2, 5, 6))
    audio.write(corpus / "Actor_01" / "03-02-03-01-01-01-01.wav")  # song
    audio.write(corpus / "Actor_02" / "01-01-03-01-01-01-02.wav")  # audio-video
    data = prepared("ravdess", corpus, tmp_path / "data")
    err = capsys.readouterr().err
    assert "skipped 2 files that are not audio-only speech" in err and "missing" not in err
    assert len(data.utts) == 240
    assert data.get("spk2gender") == {
        "Actor_01": "m",
        "Actor_02": "f",
        "Actor_05": "m",
        "Actor_06": "f",
    }
    utt = "Actor_02-03-01-05-02-02-01-02"
    assert data.get("utt2emo")[utt] == "angry" and data.get("utt2intensity")[utt] == "3"
    assert data.get("text")[utt] == "Dogs are sitting by the door"
    assert data.get("utt2intensity")["Actor_01-03-01-01-01-01-01-01"] == "0"
    assert data.get("utt2intensity")["Actor_01-03-01-02-01-01-01-01"] == "2"
    assert data.get("utt2emo")["Actor_01-03-01-08-01-01-01-01"] == "surprise"
    assert Counter(data.get("utt2intensity").values()) == {"0": 16, "2": 112, "3": 112}
    assert not data.has("utt2group")
    check_folds(data, by="speaker")


def test_ravdess_partly_missing_and_misplaced(
    tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_ravdess(tmp_path / "ravdess", audio, (3, 4))
    (corpus / "Actor_03" / "03-01-04-02-01-01-03.wav").unlink()
    assert len(prepare("ravdess", corpus).utts) == 119
    assert "ravdess: 1 of the 120 speech files (60 per actor) are missing" in (
        capsys.readouterr().err
    )
    audio.write(corpus / "Actor_03" / "03-01-04-02-01-01-04.wav")
    with pytest.raises(SpeechEQError, match="a file of actor 04 in folder Actor_03"):
        prepare("ravdess", corpus)


# --- CREMA-D -------------------------------------------------------------------------------


def write_cremad(root: Path, audio: Audio) -> Path:
    names = []
    for actor in range(1001, 1006):
        names += [f"{actor}_IEO_HAP_HI", f"{actor}_IEO_SAD_LO", f"{actor}_DFA_NEU_XX"]
        names += [f"{actor}_TSI_ANG_XX", f"{actor}_ITS_DIS_MD", f"{actor}_WSI_FEA_XX"]
    names.append("1004_ITH_SAD_X")  # misnamed in the distribution
    for name in names:
        audio.write(root / "AudioWAV" / f"{name}.wav")
    sexes = ["Male", "Female", "Female", "Male"]  # 1005 is not in the table
    rows = [f'{1001 + i},{30 + i},{sex},Caucasian,"Not Hispanic"' for i, sex in enumerate(sexes)]
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return root


def test_cremad(tmp_path: Path, audio: Audio) -> None:
    data = prepared("cremad", write_cremad(tmp_path / "cremad", audio), tmp_path / "data")
    assert len(data.utts) == 31 and data.speakers == ["1001", "1002", "1003", "1004", "1005"]
    assert data.get("spk2gender") == {"1001": "m", "1002": "f", "1003": "f", "1004": "m"}
    intensity = data.get("utt2intensity")
    assert intensity["1001_IEO_HAP_HI"] == "3" and intensity["1002_IEO_SAD_LO"] == "1"
    assert intensity["1003_ITS_DIS_MD"] == "2" and intensity["1003_DFA_NEU_XX"] == "0"
    assert "1003_TSI_ANG_XX" not in intensity and "1004_ITH_SAD_X" not in intensity
    assert data.get("utt2emo")["1004_ITH_SAD_X"] == "sad"
    assert data.get("utt2emo")["1005_WSI_FEA_XX"] == "fear"
    assert data.get("text")["1001_IEO_HAP_HI"] == "It's eleven o'clock"
    assert data.get("text")["1005_WSI_FEA_XX"] == "We'll stop in a couple of minutes"
    check_folds(data, by="speaker", num_folds=5)


def test_cremad_bad_demographics_line(tmp_path: Path, audio: Audio) -> None:
    corpus = write_cremad(tmp_path / "cremad", audio)
    table = corpus / "VideoDemographics.csv"
    table.write_text(table.read_text() + "1005,40,Unknown,Asian,Hispanic\n")
    with pytest.raises(SpeechEQError, match=r"VideoDemographics.csv:6: unknown Sex 'Unknown'"):
        prepare("cremad", corpus)


# --- ESD -----------------------------------------------------------------------------------

ESD_EMOTIONS = {
    "Neutral": ("中立", "Neutral"),
    "Angry": ("生气", "Angry"),
    "Happy": ("快乐", "Happy"),
    "Sad": ("伤心", "Sad"),
    "Surprise": ("惊喜", "Surprise"),
}
ESD_POSITIONS = {1: "valid", 20: "valid", 21: "test", 50: "test", 51: "train", 350: "train"}
"""Positions within an emotion's block of 350 -> their partition, on both sides of each edge."""


def write_esd(root: Path, audio: Audio, folders: bool, encodings: dict[str, str]) -> Path:
    """Speakers 0001 (Mandarin) and 0011 (English), 6 utterances per emotion."""
    for spk, encoding in encodings.items():
        chinese = int(spk) <= 10
        lines = []
        for block, (folder, words) in enumerate(ESD_EMOTIONS.items()):
            for position, split in ESD_POSITIONS.items():
                utt = f"{spk}_{block * 350 + position:06d}"
                text = "打远一看，它们的确很是美丽。" if chinese else "Author of the danger trail."
                lines.append(f"{utt}\t{text}\t{words[0] if chinese else words[1]}")
                part = {"valid": "evaluation"}.get(split, split) if folders else ""
                audio.write(root / spk / folder / part / f"{utt}.wav")
        (root / spk / f"{spk}.txt").write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return root


@pytest.mark.parametrize("folders", [True, False], ids=["partition-folders", "flat"])
def test_esd(tmp_path: Path, audio: Audio, folders: bool) -> None:
    encodings = (
        {"0001": "utf-16", "0011": "utf-8"} if folders else {"0001": "gb18030", "0011": "utf-16-le"}
    )
    corpus = write_esd(tmp_path / "esd", audio, folders, encodings)
    write_esd(corpus, audio, folders, {"0012": "utf-8-sig"})
    data = prepared("esd", corpus, tmp_path / "data")
    assert len(data.utts) == 30 * (len(encodings) + 1)
    assert data.get("text")["0001_000351"] == "打远一看，它们的确很是美丽。"
    assert data.get("utt2emo")["0001_001750"] == "surprise"
    assert data.get("utt2emo")["0001_000701"] == "happy"
    assert (
        data.get("utt2lang")["0001_000001"] == "zh" and data.get("utt2lang")["0012_000001"] == "en"
    )
    assert data.get("spk2gender")["0001"] == "f" and data.get("spk2gender")["0012"] == "m"
    for utt, split in data.get("utt2split").items():
        assert split == ESD_POSITIONS[(int(utt[5:]) - 1) % 350 + 1], utt
    partition = split_folds(data, by="partition")[0]
    assert (len(partition.train.utts), len(partition.valid.utts), len(partition.test.utts)) == (
        10 * len(data.speakers),
        10 * len(data.speakers),
        10 * len(data.speakers),
    )
    check_folds(data, by="speaker")


def test_esd_transcript_problems(
    tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_esd(tmp_path / "esd", audio, True, {"0011": "utf-8"})
    transcript = corpus / "0011" / "0011.txt"
    lines = transcript.read_text().splitlines()
    lines[0] = lines[0].replace("Neutral", "Sad")
    transcript.write_text("\n".join(lines[:-1]) + "\n")
    data = prepare("esd", corpus)
    err = capsys.readouterr().err
    assert "1 utterances have no transcript line" in err
    assert "1 transcript lines name another emotion" in err
    assert data.get("utt2emo")["0011_000001"] == "neutral"
    assert data.get("utt2split")["0011_000001"] == "valid"
    (corpus / "0011" / "Neutral" / "train").joinpath("0011_000001.wav").write_bytes(
        (corpus / "0011" / "Neutral" / "evaluation" / "0011_000001.wav").read_bytes()
    )
    (corpus / "0011" / "Neutral" / "evaluation" / "0011_000001.wav").unlink()
    assert prepare("esd", corpus).get("utt2split")["0011_000001"] == "train"  # the folder rules
    transcript.write_text(transcript.read_text() + "0011_001750\tWhat?\tBored\n")
    with pytest.raises(SpeechEQError, match=r"0011.txt:30: unknown emotion 'bored'"):
        prepare("esd", corpus)


# --- IEMOCAP -------------------------------------------------------------------------------

IEMOCAP_DIALOGS: dict[str, list[tuple[str, str]]] = {
    "Ses01F_impro01": [("F000", "neu"), ("M000", "exc"), ("F001", "xxx"), ("M001", "fru")],
    "Ses01F_script01_1": [("F000", "hap"), ("M000", "ang"), ("F001", "sad"), ("M001", "oth")],
    "Ses02M_impro02": [("F000", "sad"), ("M000", "neu"), ("F001", "exc"), ("M001", "sur")],
    "Ses02M_script02_1b": [("F000", "dis"), ("M000", "ang"), ("F001", "xxx"), ("M001", "fea")],
}


def write_iemocap(root: Path, audio: Audio) -> Path:
    for dialog, turns in IEMOCAP_DIALOGS.items():
        session = root / f"Session{int(dialog[3:5])}"
        evaluation = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        transcription = []
        for index, (turn, code) in enumerate(turns):
            utt = f"{dialog}_{turn}"
            start, end = 2.0 * index + 0.5, 2.0 * index + 1.75
            evaluation += [
                f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[2.5000, {3 + index}.0000, 3.5000]",
                "C-E2:\tNeutral;\t()",
                "A-E3:\tval 3; act 2; dom  2;\t()",
                "",
            ]
            transcription += [f"{utt} [{start:08.4f}-{end:08.4f}]: Turn {index} of {dialog}."]
            audio.write(session / "sentences" / "wav" / dialog / f"{utt}.wav")
        transcription += ["M: [BREATHING]", f"{dialog}_MXX0 [001.0000-002.0000]: Mm."]
        labels = session / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("\n".join(evaluation) + "\n")
        (labels.parent / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07 resource fork")
        (labels.parent / "Categorical").mkdir(exist_ok=True)
        text = session / "dialog" / "transcriptions" / f"{dialog}.txt"
        text.parent.mkdir(parents=True, exist_ok=True)
        text.write_text("\n".join(transcription) + "\n")
    return root


def test_iemocap(tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared("iemocap", write_iemocap(tmp_path / "iemocap", audio), tmp_path / "data")
    assert "warning" not in capsys.readouterr().err
    assert len(data.utts) == 16 and data.speakers == ["Ses01F", "Ses01M", "Ses02F", "Ses02M"]
    assert data.get("spk2gender") == {"Ses01F": "f", "Ses01M": "m", "Ses02F": "f", "Ses02M": "m"}
    emo = data.get("utt2emo")
    assert len(emo) == 14 and "Ses01F-Ses01F_impro01_F001" not in emo
    assert emo["Ses01M-Ses01F_impro01_M000"] == "excited"
    assert emo["Ses01M-Ses01F_impro01_M001"] == "frustrated"
    assert emo["Ses01M-Ses01F_script01_1_M001"] == "other"
    assert data.utt2spk["Ses02F-Ses02M_script02_1b_F000"] == "Ses02F"
    assert data.get("utt2avd")["Ses01F-Ses01F_script01_1_F001"] == "5 2.5 3.5"
    assert data.get("text")["Ses02M-Ses02M_impro02_M000"] == "Turn 1 of Ses02M_impro02."
    nat = data.get("utt2nat")
    assert nat["Ses01F-Ses01F_impro01_F000"] == "natural"
    assert nat["Ses02F-Ses02M_script02_1b_F000"] == "acted"
    assert data.get("utt2group")["Ses02F-Ses02M_impro02_F000"] == "Session2"
    four_class = ClassMap.build(["neutral", "happy", "angry", "sad"], {"excited": "happy"})
    per_session = Counter(
        data.get("utt2group")[utt] for utt, emotion in emo.items() if four_class.map(emotion)
    )
    assert per_session == {"Session1": 5, "Session2": 4}
    check_folds(data, by="group")


def test_iemocap_partly_missing_and_malformed(
    tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_iemocap(tmp_path / "iemocap", audio)
    wav_dir = corpus / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    (wav_dir / "Ses01F_impro01_M000.wav").unlink()
    audio.write(wav_dir / "Ses01F_impro01_M002.wav")
    data = prepare("iemocap", corpus)
    err = capsys.readouterr().err
    assert "iemocap: 1 of the 16 audio files of evaluated utterances are missing" in err
    assert "1 utterances have no evaluation line; kept without labels" in err
    assert "Ses01M-Ses01F_impro01_M002" in data.utts
    assert "Ses01M-Ses01F_impro01_M002" not in data.get("utt2emo")
    labels = corpus / "Session2" / "dialog" / "EmoEvaluation" / "Ses02M_impro02.txt"
    lines = labels.read_text().splitlines()
    lines[2] = lines[2].replace("\tsad\t", "\tbored\t")
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpeechEQError, match=r"Ses02M_impro02.txt:3: unknown emotion code 'bored'"):
        prepare("iemocap", corpus)


# --- CSV -----------------------------------------------------------------------------------


def write_csv_corpus(root: Path, audio: Audio) -> Path:
    for name in ("anna_001", "anna_002", "ben 001", "ben 002", "c1", "c2"):
        audio.write(root / "wav" / f"{name}.wav")
    (root / "metadata.csv").write_text(
        "Path,speaker,emotion,intensity,gender,text,session,arousal,valence,dominance\n"
        'wav/anna_001.wav,anna,happy,2,female,"What a lovely day, really.",s1,4,4.5,3\n'
        "wav/anna_002.wav,anna,neutral,0,f,The train leaves at six.,s1,,,\n"
        "wav/ben 001.wav,ben,angry,,m,,s2,,,\n"
        "wav/ben 002.wav,ben,,,male,,s2,,,\n"
        "\n"
        "wav/c1.wav,cleo,sad,3,,,s3,,,\n"
        "wav/c2.wav,cleo,sad,1,,,s3,,,\n"
        "wav/c3.wav,cleo,sad,1,,,s3,,,\n",
        encoding="utf-8",
    )
    return root


def test_csv(tmp_path: Path, audio: Audio, capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared("csv", write_csv_corpus(tmp_path / "corpus", audio), tmp_path / "data")
    err = capsys.readouterr().err
    assert "ignoring column(s) session" in err
    assert "1 of the 7 audio files named in" in err
    assert data.utts == [
        "anna_001",
        "anna_002",
        "ben_001",
        "ben_002",
        "cleo-c1",
        "cleo-c2",
    ]
    assert data.get("spk2gender") == {"anna": "f", "ben": "m"}
    assert data.get("utt2emo") == {
        "anna_001": "happy",
        "anna_002": "neutral",
        "ben_001": "angry",
        "cleo-c1": "sad",
        "cleo-c2": "sad",
    }
    assert (
        data.get("utt2intensity")["anna_002"] == "0" and data.get("utt2intensity")["cleo-c1"] == "3"
    )
    assert data.get("text") == {
        "anna_001": "What a lovely day, really.",
        "anna_002": "The train leaves at six.",
    }
    assert data.get("utt2avd") == {"anna_001": "4 4.5 3"}
    check_folds(data)


def test_csv_tsv_with_ids_groups_and_splits(tmp_path: Path, audio: Audio) -> None:
    root = tmp_path / "corpus"
    rows = []
    for spk, group in (("s1", "g1"), ("s2", "g1"), ("s3", "g2")):
        for take, split in enumerate(("train", "valid", "test")):
            audio.write(root / spk / f"{take}.wav")
            rows.append(
                f"{root / spk}/{take}.wav\t{spk}\tcalm\t{spk}_{take}\t{group}\t{split}\ten\tacted"
            )
    table = root / "list.tsv"
    header = "path\tspeaker\temotion\tutt\tgroup\tsplit\tlanguage\tnaturalness"
    table.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-16")
    data = prepared("csv", table, tmp_path / "data")
    assert data.utts == ["s1_0", "s1_1", "s1_2", "s2_0", "s2_1", "s2_2", "s3_0", "s3_1", "s3_2"]
    assert Counter(data.get("utt2split").values()) == {"train": 3, "valid": 3, "test": 3}
    assert set(data.get("utt2lang").values()) == {"en"}
    check_folds(data, by="group")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("wav/a.wav,anna,furious,,", r"metadata.csv:3: unknown emotion category 'furious'"),
        ("wav/a.wav,anna,sad,4,", r"metadata.csv:3: unknown intensity level '4'"),
        ("wav/a.wav,anna,sad,,x", r"metadata.csv:3: unknown gender 'x'"),
        ("wav/a.wav,anna,sad,,m", r"metadata.csv:3: speaker 'anna' has gender 'm' here but 'f'"),
        ("wav/a.wav,an na,sad,,", r"metadata.csv:3: speaker id 'an na' contains whitespace"),
        ("wav/a.wav,anna", r"metadata.csv:3: expected 5 cells, found 2"),
        ("wav/a.wav,anna,sad,,,x", r"metadata.csv:3: expected 5 cells, found 6"),
    ],
)
def test_csv_bad_values_name_the_line(tmp_path: Path, audio: Audio, row: str, message: str) -> None:
    audio.write(tmp_path / "wav" / "a.wav")
    (tmp_path / "metadata.csv").write_text(
        f"path,speaker,emotion,intensity,gender\nwav/a.wav,anna,sad,1,f\n{row}\n"
    )
    with pytest.raises(SpeechEQError, match=message):
        prepare("csv", tmp_path)


def test_csv_duplicate_ids_and_missing_columns(tmp_path: Path, audio: Audio) -> None:
    audio.write(tmp_path / "a" / "x.wav")
    audio.write(tmp_path / "b" / "x.wav")
    table = tmp_path / "metadata.csv"
    table.write_text("path,speaker,emotion\na/x.wav,anna,sad\nb/x.wav,anna,sad\n")
    with pytest.raises(SpeechEQError, match=r"metadata.csv:3: utterance id 'anna-x' is already"):
        prepare("csv", tmp_path)
    table.write_text("file,speaker\na/x.wav,anna\n")
    with pytest.raises(SpeechEQError, match=r"metadata.csv:1: the header lacks column\(s\) path"):
        prepare("csv", table)


# --- every preparer ------------------------------------------------------------------------


@pytest.mark.parametrize("name", PREPARERS)
def test_missing_corpus_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpeechEQError, match=f"the {name} corpus directory does not exist"):
        prepare(name, tmp_path / "absent")


@pytest.mark.parametrize("name", PREPARERS)
def test_wrongly_laid_out_folder(tmp_path: Path, audio: Audio, name: str) -> None:
    audio.write(tmp_path / "corpus" / "some" / "clip.wav")
    audio.write(tmp_path / "corpus" / "clip.wav")
    expected = "no corpus table" if name == "csv" else f"no {name} corpus found: expected "
    with pytest.raises(SpeechEQError, match=expected):
        prepare(name, tmp_path / "corpus")
    if name != "csv":
        with pytest.raises(SpeechEQError, match=expected):
            prepare(name, tmp_path / "corpus" / "clip.wav")


@pytest.mark.slow
def test_prepare_command_writes_the_data_directory(tmp_path: Path, audio: Audio) -> None:
    from typer.testing import CliRunner

    from speecheq.cli.main import app

    corpus = write_emodb(tmp_path / "emodb", audio)
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(
        app, ["prepare", "emodb", str(data_dir), "--corpus-dir", str(corpus)]
    )
    assert result.exit_code == 0, result.output
    assert validate(data_dir) == []
    assert "boredom" in result.stdout
    result = CliRunner().invoke(app, ["prepare", "esd", str(data_dir), "--corpus-dir", str(corpus)])
    assert result.exit_code != 0 and "no esd corpus found" in str(result.exception)
