"""Stage 3: Mandarin, English and eSpeak NG pronunciations, token lists, OOVs, BPE, the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sentencepiece as spm
from typer.testing import CliRunner

from speecheq.cli.main import app
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.fileio import read_table
from speecheq.lexicon import build_lexicon, read_tokens
from speecheq.lexicon.english import ESPEAK_TO_ARPABET, EnglishPronouncer
from speecheq.lexicon.espeak import EspeakPronouncer
from speecheq.lexicon.mandarin import syllable_phones, transcribe
from speecheq.lexicon.text import split_words
from tests.conftest import corpus_dir, write_tone

ARPABET = {phone for phones in ESPEAK_TO_ARPABET.values() for phone in phones}


def spoken(text: str) -> str:
    return " ".join(token for word in transcribe(text) for token in word.spoken or ("<unk>",))


def write_datadir(
    root: Path, texts: dict[str, str | None], languages: dict[str, str] | None = None
) -> Path:
    """A data directory of utterances ``<spk>-<n>`` with these texts (None: no text line)."""
    wav = str(write_tone(root / "tone.wav"))
    tables = {
        "wav.scp": {utt: wav for utt in texts},
        "utt2spk": {utt: utt.split("-")[0] for utt in texts},
        "text": {utt: text for utt, text in texts.items() if text is not None},
    }
    if languages:
        tables["utt2lang"] = languages
    DataDir(tables).save(root / "data")
    return root / "data"


def test_mandarin_sandhi_punctuation_and_initials_finals() -> None:
    assert spoken("你好！") == "n i2 h ao3"
    assert [word.citation for word in transcribe("你好")] == [("n", "i3"), ("h", "ao3")]
    # sandhi crosses word boundaries (雨 | 也), as the CASIA speakers say it, but not a comma
    assert spoken("就是下雨也去。") == "j iou4 sh i4 x ia4 v2 ie3 q v4"
    assert spoken("你，好") == "n i3 h ao3"
    assert spoken("你 好") == "n i2 h ao3"
    assert spoken("“你好”，《世界》――、。！？;:") == "n i2 h ao3 sh i4 j ie4"
    assert spoken("不去") == "b u2 q v4"
    assert [word.citation for word in transcribe("一个不是")][::2] == [("i1",), ("b", "u4")]
    # zero-initial syllables are just their final; syllabic nasals are one token
    assert spoken("五月要玩") == "u3 ve4 iao4 uan2"
    assert syllable_phones("yuan2") == ("van2",)
    assert syllable_phones("zhuang1") == ("zh", "uang1")
    assert syllable_phones("n2") == ("n2",)
    assert spoken("我们") == "uo3 m en5"


def test_mandarin_oov_runs() -> None:
    words = transcribe("你好hello 123世界OK")
    assert [(word.text, word.is_oov) for word in words] == [
        ("你", False),
        ("好", False),
        ("hello", True),
        ("123", True),
        ("世", False),
        ("界", False),
        ("ok", True),
    ]


def casia_sentences() -> dict[str, str]:
    path = corpus_dir("casia") / "相同的文本201--250.txt"
    sentences = {}
    for line in path.read_bytes().decode("gb18030").splitlines():
        match = re.fullmatch(r"\s*(\d+)\.\s*(.*?)\s*", line)
        if match:
            sentences[match[1]] = match[2]
    return sentences


@pytest.mark.corpora
def test_casia_sentences_convert_without_oov() -> None:
    sentences = casia_sentences()
    assert len(sentences) == 50
    for sentence_id, sentence in sentences.items():
        words = transcribe(sentence)
        assert not [word.text for word in words if word.is_oov], sentence_id
        assert len(words) == len(re.sub(r"[\s。]", "", sentence)), sentence_id


@pytest.mark.corpora
def test_casia_spoken_tones_agree_with_lab_files() -> None:
    """The .lab files give the tones as spoken; compare where a .lab covers the sentence."""
    transcripts = {sentence_id: transcribe(text) for sentence_id, text in casia_sentences().items()}
    agree = total = 0
    for lab in sorted(corpus_dir("casia").glob("*/*/*.lab")):
        lines = lab.read_text(encoding="latin-1").split("\n")
        said = [parts[2] for parts in map(str.split, lines) if len(parts) == 3]
        said = [syllable for syllable in said if syllable != "SIL"]
        words = transcripts[lab.stem]
        if len(said) == len(words):
            total += len(words)
            agree += sum(w.spoken == syllable_phones(s) for w, s in zip(words, said, strict=True))
    assert total > 5000
    assert agree / total > 0.94


@pytest.mark.corpora
def test_esd_transcripts_convert_and_oovs_are_counted(tmp_path: Path) -> None:
    path = corpus_dir("esd-transcripts") / "0001.txt"
    texts: dict[str, str | None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        utt, text, _emotion = line.split("\t")
        texts[f"0001-{utt}"] = text
    assert len(texts) == 1750
    data_dir = write_datadir(tmp_path, texts)
    report = build_lexicon(data_dir, tmp_path / "lang", language="zh")
    assert report.transcribed == 1750 and report.languages == {"zh": 1750}
    oov_lines = (tmp_path / "lang" / "oov.txt").read_text(encoding="utf-8").splitlines()
    assert oov_lines == [f"{word} {count}" for word, count in report.oov_by_count]
    tokens = read_table(data_dir / "tokens").values()
    unks = sum(line.split().count("<unk>") for line in tokens)
    assert unks == sum(report.oov.values())
    assert len(report.tokens) > 100


def test_english_cmudict_with_espeak_for_missing_words() -> None:
    pronounce = EnglishPronouncer()
    assert "speecheq" not in pronounce.cmudict
    tokens = pronounce(["hello", "don't", "speecheq"])
    assert tokens["hello"] == ("HH", "AH", "L", "OW")
    assert tokens["don't"] == ("D", "OW", "N", "T")
    assert tokens["speecheq"] is not None
    assert tokens["speecheq"][:3] == ("S", "P", "IY") and set(tokens["speecheq"]) <= ARPABET


def test_german_through_espeak() -> None:
    tokens = EspeakPronouncer("de")(["straße", "ich", "123"])
    assert tokens["straße"] is not None and tokens["straße"][:2] == ("ʃ", "t")
    assert tokens["ich"] == ("ɪ", "ç")
    assert tokens["123"] is not None and len(tokens["123"]) > 10  # eSpeak NG spells digits


def test_build_writes_token_list_lexicon_oovs_and_transcripts(tmp_path: Path) -> None:
    texts = {
        "a-1": "你好，hello 123！",
        "a-2": "",
        "b-1": "Hello, world! Don't.",
        "b-2": "Guten Tag.",
        "b-3": None,
    }
    data_dir = write_datadir(tmp_path, texts, {"a-1": "zh", "a-2": "zh", "b-1": "en"})
    lang = tmp_path / "lang"
    report = build_lexicon(data_dir, lang, language="de")
    assert report.languages == {"de": 1, "en": 1, "zh": 1}
    assert report.transcribed == 3 and report.without_text == 2

    lines = (lang / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["<blank> 0", "<unk> 1"]
    symbols = [line.split()[0] for line in lines]
    assert [int(line.split()[1]) for line in lines] == list(range(len(lines)))
    assert symbols[2:] == sorted(symbols[2:]) and len(set(symbols)) == len(symbols)
    assert read_tokens(lang) == symbols == report.tokens

    transcripts = read_table(data_dir / "tokens")
    assert sorted(transcripts) == ["a-1", "b-1", "b-2"]
    assert transcripts["a-1"] == "n i2 h ao3 <unk> <unk>"
    assert transcripts["b-1"] == "HH AH L OW W ER L D D OW N T"
    assert all(token in symbols for line in transcripts.values() for token in line.split())
    assert "i3" in symbols  # the lexicon's citation form is a token too

    lexicon = (lang / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    assert lexicon == sorted(lexicon)
    assert {"你 n i3", "好 h ao3", "hello HH AH L OW", "don't D OW N T"} <= set(lexicon)
    assert any(line.startswith("tag ") for line in lexicon)
    assert (lang / "oov.txt").read_text(encoding="utf-8") == "123 1\nhello 1\n"
    assert report.oov == {"123": 1, "hello": 1}


def test_languages_must_be_known(tmp_path: Path) -> None:
    data_dir = write_datadir(tmp_path, {"a-1": "你好"})
    with pytest.raises(SpeechEQError, match="has no utt2lang; give the language"):
        build_lexicon(data_dir, tmp_path / "lang")
    with pytest.raises(SpeechEQError, match="language 'xx' is neither Mandarin"):
        build_lexicon(data_dir, tmp_path / "lang", language="xx")
    with pytest.raises(SpeechEQError, match="unknown token type 'char'"):
        build_lexicon(data_dir, tmp_path / "lang", token_type="char", language="zh")
    data_dir = write_datadir(tmp_path, {"a-1": "你好", "a-2": "好"}, {"a-1": "zh"})
    with pytest.raises(SpeechEQError, match="utterance 'a-2' has text but no language"):
        build_lexicon(data_dir, tmp_path / "lang")


def test_read_tokens_rejects_a_malformed_list(tmp_path: Path) -> None:
    (tmp_path / "tokens.txt").write_text("<blank> 0\n<unk> 1\na 1\n")
    with pytest.raises(SpeechEQError, match=r"tokens.txt:3: expected '<symbol> <id>'"):
        read_tokens(tmp_path)
    (tmp_path / "tokens.txt").write_text("<blank> 0\n<unk> 1\na 3\n")
    with pytest.raises(SpeechEQError, match="the ids are not 0 to 2"):
        read_tokens(tmp_path)


def test_bpe_round_trip_and_rerun_as_phones(tmp_path: Path) -> None:
    texts = {
        f"s-{index}": text
        for index, text in enumerate(
            ["你好，世界！", "世界很大。", "Hello, World: hello again!", "大家好", "你们好吗？"] * 4
        )
    }
    data_dir = write_datadir(tmp_path, texts, dict.fromkeys(texts, "zh"))
    lang = tmp_path / "lang"
    report = build_lexicon(data_dir, lang, token_type="bpe", nbpe=40)
    model = spm.SentencePieceProcessor(model_file=str(lang / "bpe.model"))
    symbols = read_tokens(lang)
    assert symbols[:2] == ["<blank>", "<unk>"] and len(symbols) == 40 == len(report.tokens)
    assert symbols == [model.id_to_piece(index) for index in range(model.get_piece_size())]
    transcripts = read_table(data_dir / "tokens")
    assert len(transcripts) == len(texts) and not report.oov
    for utt, pieces in transcripts.items():
        assert "".join(pieces.split()).replace("▁", " ").strip() == " ".join(
            split_words(texts[utt])
        )
        assert model.encode(" ".join(split_words(texts[utt])), out_type=str) == pieces.split()
    with pytest.raises(SpeechEQError, match=r"--nbpe 5000 is more pieces .* \(at most \d+\)"):
        build_lexicon(data_dir, lang, token_type="bpe", nbpe=5000)
    with pytest.raises(SpeechEQError, match=r"--nbpe 5 is fewer pieces .* \(at least \d+\)"):
        build_lexicon(data_dir, lang, token_type="bpe", nbpe=5)

    build_lexicon(data_dir, lang)
    assert not (lang / "bpe.model").exists()
    assert "n i2 h ao3" in read_table(data_dir / "tokens")["s-0"]
    assert "h ao3" in (lang / "lexicon.txt").read_text(encoding="utf-8")


def test_cli_on_a_tiny_data_dir(tmp_path: Path) -> None:
    data_dir = write_datadir(tmp_path, {"a-1": "你好，OK！", "a-2": "我们很好。"})
    lang = tmp_path / "lang"
    result = CliRunner().invoke(app, ["lexicon", str(data_dir), str(lang), "--language", "zh"])
    assert result.exit_code == 0, result.output
    assert "utterances transcribed" in result.output
    assert re.search(r"ok\s*│\s*1", result.output)  # the OOV word is listed with its count
    assert read_table(data_dir / "tokens")["a-2"] == "uo3 m en5 h en2 h ao3"
    result = CliRunner().invoke(app, ["lexicon", str(data_dir), str(lang)])
    assert isinstance(result.exception, SpeechEQError)
