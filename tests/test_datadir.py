"""Data directories: reading, validation, fixing, subsets, combining and fold splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import soundfile

from speecheq.data.check import fix, validate
from speecheq.data.datadir import DataDir
from speecheq.data.folds import save_folds, speaker_dependent_folds, split_folds
from speecheq.data.ops import combine, subset
from speecheq.data.perturb import parse_speeds, perturb_speed, source_id
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write, read_table, write_table
from tests.conftest import make_datadir


def test_roundtrip_is_sorted_and_derives_spk2utt(datadir: Path) -> None:
    data = DataDir.load(datadir)
    assert len(data.utts) == 32
    assert data.speakers == ["spk1", "spk2", "spk3", "spk4"]
    lines = (datadir / "utt2spk").read_text().splitlines()
    assert lines == sorted(lines)
    spk2utt = read_table(datadir / "spk2utt")
    assert spk2utt["spk1"].split() == [u for u in data.utts if u.startswith("spk1")]
    assert validate(datadir) == []


def test_validate_reports_every_problem_with_file_and_line(datadir: Path) -> None:
    utt2emo = datadir / "utt2emo"
    lines = utt2emo.read_text().splitlines()
    lines[2] = lines[2].split()[0] + " furious"  # unknown label
    lines.insert(5, lines[4])  # duplicate
    lines.append("orphan-utt sad")  # not in wav.scp (and out of order? no: 'o' < 's')
    lines.append("malformed")
    utt2emo.write_text("\n".join(lines) + "\n")
    messages = [str(p) for p in validate(datadir)]
    assert any(m.startswith(f"{utt2emo}:3: unknown emotion category 'furious'") for m in messages)
    assert any(m.startswith(f"{utt2emo}:6: duplicate id") for m in messages)
    assert any("malformed line 'malformed'" in m for m in messages)
    assert any("'orphan-utt' is not in wav.scp" in m for m in messages)
    assert any("out of order" in m for m in messages)
    with pytest.raises(SpeechEQError, match="utt2emo:3: unknown emotion category 'furious'"):
        DataDir.load(datadir)


def test_validate_missing_audio_and_spk2utt_disagreement(datadir: Path) -> None:
    first = DataDir.load(datadir).utts[0]
    wav = Path(read_table(datadir / "wav.scp")[first])
    wav.unlink()
    (datadir / "spk2utt").write_text("spk1 spk1-angry-0\n")
    messages = [str(p) for p in validate(datadir)]
    assert any(f"utterance '{first}'" in m and "does not exist" in m for m in messages)
    assert any("spk2utt: does not agree with utt2spk" in m for m in messages)


def test_validate_check_audio_catches_corrupt_file(datadir: Path) -> None:
    data = DataDir.load(datadir)
    Path(data.get("wav.scp")[data.utts[1]]).write_bytes(b"RIFF not really a wav")
    assert validate(datadir) == []
    problems = validate(datadir, check_audio=True)
    assert len(problems) == 1 and problems[0].key == data.utts[1]
    assert "cannot decode" in problems[0].message


def test_pipe_entries_are_read_through_the_shell(tmp_path: Path, datadir: Path) -> None:
    from speecheq.audio import read_audio

    data = DataDir.load(datadir)
    path = data.get("wav.scp")[data.utts[0]]
    samples, rate = read_audio(f"cat {path} |", "u1")
    assert rate == 16000 and len(samples) == 8000
    with pytest.raises(SpeechEQError, match="utterance 'u1': command 'false' failed"):
        read_audio("false |", "u1")


def test_fix_drops_bad_lines_and_incomplete_utterances(datadir: Path, tmp_path: Path) -> None:
    data = DataDir.load(datadir)
    utts = data.utts
    (datadir / "utt2spk").write_text(
        "".join(f"{u} {data.utt2spk[u]}\n" for u in reversed(utts[1:]))  # unsorted, one missing
    )
    (datadir / "utt2emo").write_text(f"{utts[2]} furious\n{utts[3]} sad\n")
    Path(data.get("wav.scp")[utts[4]]).unlink()
    out = tmp_path / "fixed"
    report = fix(datadir, out)
    assert report.dropped == {
        ("utt2spk", "utterance missing"): 1,
        ("utt2emo", "value not in the label space"): 1,
        ("wav.scp", "audio file missing"): 1,
    }
    assert report.kept == len(utts) - 2
    assert validate(out) == []
    fixed = DataDir.load(out)
    assert fixed.get("utt2emo") == {utts[3]: "sad"}
    assert utts[0] not in fixed.utts and utts[4] not in fixed.utts


def test_subset_by_speaker_utts_and_per_class(datadir: Path) -> None:
    data = DataDir.load(datadir)
    by_spk = subset(data, speakers=["spk2"])
    assert by_spk.speakers == ["spk2"] and len(by_spk.utts) == 8
    assert by_spk.get("spk2gender") == {"spk2": "m"}
    per_class = subset(data, per_class=1)
    assert sorted(per_class.get("utt2emo").values()) == ["angry", "happy", "neutral", "sad"]
    with pytest.raises(SpeechEQError, match="speaker\\(s\\) not in the data directory: nobody"):
        subset(data, speakers=["nobody"])


def test_combine_records_corpus_and_rejects_collisions(tmp_path: Path) -> None:
    a = make_datadir(tmp_path / "a", speakers={"s1": "f"})
    b = make_datadir(tmp_path / "b", speakers={"s1": "m"})
    with pytest.raises(SpeechEQError, match="utterance id 's1-angry-0' is in both 'a' and 'b'"):
        combine([a, b], ["a", "b"])
    both = combine([a, b], ["a", "b"], prefix=True)
    assert set(both.get("utt2corpus").values()) == {"a", "b"}
    assert both.get("spk2gender") == {"a-s1": "f", "b-s1": "m"}
    assert both.utt2spk["b-s1-sad-1"] == "b-s1"
    both.save(tmp_path / "both")
    assert validate(tmp_path / "both") == []


def test_leave_one_speaker_out_folds_are_speaker_independent(datadir: Path, tmp_path: Path) -> None:
    data = DataDir.load(datadir)
    folds = split_folds(data, valid_fraction=0.5)
    assert [f.test.speakers for f in folds] == [["spk1"], ["spk2"], ["spk3"], ["spk4"]]
    tested: list[str] = []
    for fold in folds:
        assert not set(fold.test.speakers) & set(fold.train.speakers)
        assert not set(fold.test.speakers) & set(fold.valid.speakers)
        assert fold.valid.utts and not set(fold.valid.utts) & set(fold.train.utts)
        tested += fold.test.utts
    assert sorted(tested) == data.utts
    save_folds(folds, tmp_path / "folds")
    assert validate(tmp_path / "folds" / "fold3" / "train") == []
    assert sorted(p.name for p in (tmp_path / "folds").iterdir()) == [
        f"fold{i}" for i in range(1, 5)
    ]


def test_speaker_groups_and_group_folds(datadir: Path) -> None:
    data = DataDir.load(datadir)
    folds = split_folds(data, num_folds=2)
    assert [f.test.speakers for f in folds] == [["spk1", "spk3"], ["spk2", "spk4"]]
    utt2group = {u: "g1" if data.utt2spk[u] in ("spk1", "spk2") else "g2" for u in data.utts}
    grouped = DataDir({**data.tables, "utt2group": utt2group})
    folds = split_folds(grouped, by="group")
    assert [f.test.speakers for f in folds] == [["spk1", "spk2"], ["spk3", "spk4"]]
    utt2group[data.utts[0]] = "g2"  # spk1 now in two groups
    with pytest.raises(SpeechEQError, match="speaker 'spk1' is in several groups"):
        split_folds(DataDir({**data.tables, "utt2group": utt2group}), by="group")


def test_fold_table_folds_in_its_order_and_its_errors(datadir: Path, tmp_path: Path) -> None:
    data = DataDir.load(datadir)
    table = tmp_path / "folds.txt"
    table.write_text("a spk3\nb spk1 spk4\nc spk2\n")
    folds = split_folds(data, by="table", table=table)
    assert [(f.name, f.test.speakers) for f in folds] == [
        ("a", ["spk3"]),
        ("b", ["spk1", "spk4"]),
        ("c", ["spk2"]),
    ]
    assert all(fold.speaker_independent for fold in folds)
    for text, error in [
        ("a spk3\nb spk1 spk4\nc spk2 spk9\n", "folds.txt:3: speaker 'spk9' is not in the data"),
        ("a spk3\nb spk1 spk3\nc spk2 spk4\n", "folds.txt:2: speaker 'spk3' is already in fold a"),
        ("a spk3\nb spk1\nc spk2\n", "folds.txt: speaker\\(s\\) in no fold: spk4"),
        ("a spk3\na spk1 spk4\nc spk2\n", "folds.txt:2: 'a' is not a new fold name"),
        ("a spk3\nb/x spk1 spk4 spk2\n", "folds.txt:2: 'b/x' is not a new fold name"),
        ("a spk1 spk2 spk3 spk4\n", "a fold table needs at least 2 folds"),
    ]:
        table.write_text(text)
        with pytest.raises(SpeechEQError, match=error):
            split_folds(data, by="table", table=table)


def test_random_folds_are_stratified_and_speaker_dependent(datadir: Path, tmp_path: Path) -> None:
    data = DataDir.load(datadir)
    folds = split_folds(data, by="random", num_folds=2, valid_fraction=0.25, seed=1)
    assert sorted(u for f in folds for u in f.test.utts) == data.utts
    assert not any(fold.speaker_independent for fold in folds)
    for fold in folds:  # every speaker and class on both sides
        assert fold.test.speakers == data.speakers == fold.train.speakers
        assert not set(fold.valid.utts) & set(fold.train.utts)
        emotions = Counter(data.get("utt2emo")[u] for u in fold.test.utts)
        assert set(emotions.values()) == {len(data.utts) // 8}
    assert split_folds(data, by="random", num_folds=2, seed=1)[0].test.utts == folds[0].test.utts
    save_folds(folds, tmp_path / "folds")
    assert speaker_dependent_folds(tmp_path / "folds", ["fold1", "fold2"]) == ["fold1", "fold2"]


def test_valid_draw_is_reproducible_and_stratified(datadir: Path) -> None:
    data = DataDir.load(datadir)
    first = split_folds(data, valid_fraction=0.5, seed=3)[0].valid.utts
    again = split_folds(data, valid_fraction=0.5, seed=3)[0].valid.utts
    assert first == again
    emotions = [data.get("utt2emo")[u] for u in first]
    assert sorted(set(emotions)) == ["angry", "happy", "neutral", "sad"]
    small = split_folds(data, valid_fraction=0.1)  # strata of 2 utterances: 0.2 rounds to 0
    assert all(fold.valid.utts for fold in small)
    with pytest.raises(SpeechEQError, match="valid fraction must be in"):
        split_folds(data, valid_fraction=0.0)


def test_valid_by_speaker_holds_whole_training_speakers_out(datadir: Path) -> None:
    data = DataDir.load(datadir)
    folds = split_folds(data, valid_by="speaker", valid_fraction=0.5, seed=3)
    for fold in folds:
        rest = set(data.speakers) - set(fold.test.speakers)
        assert len(fold.valid.speakers) == 2  # half of the 3 training speakers, rounded
        assert set(fold.valid.speakers) | set(fold.train.speakers) == rest
        assert not set(fold.valid.speakers) & set(fold.train.speakers)
        assert sorted(fold.valid.utts) == sorted(
            u for u in data.utts if data.utt2spk[u] in fold.valid.speakers
        )
    assert len({tuple(fold.valid.speakers) for fold in folds}) > 1  # each fold draws its own
    again = split_folds(data, valid_by="speaker", valid_fraction=0.5, seed=3)
    assert [f.valid.utts for f in again] == [f.valid.utts for f in folds]
    one = split_folds(data, valid_by="speaker", valid_fraction=0.1)  # at least one speaker
    assert [len(fold.valid.speakers) for fold in one] == [1, 1, 1, 1]
    pairs = split_folds(data, num_folds=2, valid_by="speaker", valid_fraction=0.9)
    assert [len(fold.train.speakers) for fold in pairs] == [1, 1]  # never every speaker
    for by, error in [("partition", "the partition gives it"), ("random", "every speaker")]:
        with pytest.raises(SpeechEQError, match=error):
            split_folds(data, by=by, valid_by="speaker")
    with pytest.raises(SpeechEQError, match="valid fraction must be in"):
        split_folds(data, valid_by="speaker", valid_fraction=1.0)
    two = data.subset([u for u in data.utts if data.utt2spk[u] in ("spk1", "spk2")])
    with pytest.raises(SpeechEQError, match="needs 2 training speakers or more, not 1 \\(spk2\\)"):
        split_folds(two, valid_by="speaker")


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "table"
    write_table(target, {"b": "2", "a": "1"})
    assert target.read_text() == "a 1\nb 2\n"
    with pytest.raises(RuntimeError), atomic_write(target) as out:
        out.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "a 1\nb 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table"]


def test_conf_files_travel_with_subsets_and_must_agree_to_combine(tmp_path: Path) -> None:
    a = make_datadir(tmp_path / "a", speakers={"s1": "f", "s2": "m"})
    a.conf["feats.conf"] = "--num-mel-bins=80\n"
    a.save(tmp_path / "a-dir")
    loaded = DataDir.load(tmp_path / "a-dir")
    subset(loaded, speakers=["s1"]).save(tmp_path / "s1")
    assert (tmp_path / "s1" / "conf" / "feats.conf").read_text() == "--num-mel-bins=80\n"
    b = make_datadir(tmp_path / "b", speakers={"t1": "f"})
    b.conf["feats.conf"] = "--num-mel-bins=40\n"
    with pytest.raises(SpeechEQError, match="conf/feats.conf differs between 'a' and 'b'"):
        combine([loaded, b], ["a", "b"])


def test_a_replaced_data_directory_keeps_no_stale_table_and_the_same_one_keeps_all(
    datadir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = DataDir.load(datadir)
    write_table(datadir / "feats.scp", {utt: "x.ark:1" for utt in data.utts})
    (datadir / "conf").mkdir()
    (datadir / "conf" / "feats.conf").write_text("--num-mel-bins=80\n")
    (datadir / "notes.txt").write_text("mine\n")
    data.save(datadir)  # stage 1 again on the same corpus: the features still describe it
    assert (datadir / "feats.scp").is_file() and (datadir / "conf" / "feats.conf").is_file()
    assert "removed" not in capsys.readouterr().err
    data.subset(data.utts[:4]).save(datadir)  # stage 1 again, after a speaker was removed
    assert not (datadir / "feats.scp").exists() and not (datadir / "conf" / "feats.conf").exists()
    assert (datadir / "notes.txt").read_text() == "mine\n"  # not a table: left alone
    assert "removed feats.scp, conf/feats.conf" in " ".join(capsys.readouterr().err.split())
    assert len(DataDir.load(datadir).utts) == 4


def test_speed_perturbed_copies_train_only_their_folds(tmp_path: Path) -> None:
    data = make_datadir(tmp_path / "audio", per_emotion=1)
    copies = perturb_speed(data, tmp_path / "sp", [0.9, 1.1])
    assert len(copies.utts) == 2 * len(data.utts)
    assert copies.utt2spk["sp0.9-spk2-sad-0"] == "sp0.9-spk2"
    assert copies.get("spk2gender")["sp1.1-spk2"] == "m"
    assert copies.get("utt2emo")["sp1.1-spk3-angry-0"] == "angry"
    assert source_id("sp0.9-spk2-sad-0") == "spk2-sad-0" and source_id("spk2-sad-0") is None
    original = soundfile.info(data.get("wav.scp")["spk1-happy-0"]).frames
    slower = soundfile.info(copies.get("wav.scp")["sp0.9-spk1-happy-0"]).frames
    assert abs(slower - original / 0.9) <= 1
    assert validate(tmp_path / "sp") == []
    folds = split_folds(data, valid_fraction=0.25, perturbed=(copies, "sp"))
    for fold in folds:
        originals = [utt for utt in fold.train.utts if source_id(utt) is None]
        assert sorted(map(source_id, set(fold.train.utts) - set(originals))) == sorted(
            originals * 2
        )
        assert all(source_id(utt) is None for utt in fold.valid.utts + fold.test.utts)
        assert fold.speaker_independent
    for text in ("1.0", "0.9,0.9", "0.925", "fast"):
        with pytest.raises(SpeechEQError, match="--speeds"):
            parse_speeds(text)
