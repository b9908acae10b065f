"""Stage 2 features: Kaldi compatibility, ark/scp output, jobs, resumption, bad audio, CMVN."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import kaldi_native_fbank as knf
import kaldiio
import numpy as np
import pytest
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi
from typer.testing import CliRunner

from speecheq.audio import read_audio
from speecheq.cli.main import app
from speecheq.cluster import SlurmCluster, SlurmOptions
from speecheq.data.check import validate
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.features import (
    BACKUP,
    FeatureConfig,
    LocalJobs,
    cmvn,
    compute_features,
    make_feats,
)
from speecheq.features.jobs import split_speakers, worker_context
from speecheq.features.pitch import track_pitch
from speecheq.fileio import read_table
from tests.conftest import corpus_dir

TORCHAUDIO_OPTIONS = [
    "blackman_coeff",
    "dither",
    "energy_floor",
    "frame_length",
    "frame_shift",
    "high_freq",
    "htk_compat",
    "low_freq",
    "num_mel_bins",
    "preemphasis_coefficient",
    "raw_energy",
    "remove_dc_offset",
    "round_to_power_of_two",
    "sample_frequency",
    "snip_edges",
    "subtract_mean",
    "use_energy",
    "use_log_fbank",
    "use_power",
    "vtln_high",
    "vtln_low",
    "vtln_warp",
    "window_type",
]


def speech_like(seconds: float = 1.3, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, gliding harmonic signal with noise and a silent gap, quantized to 16 bits."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 60 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / rate
    signal = sum(0.2 / k * np.sin(k * phase) for k in range(1, 12))
    signal += 0.01 * rng.standard_normal(len(t))
    signal[int(0.5 * rate) : int(0.6 * rate)] = 0.0
    return np.round(signal * 32767).astype(np.int16).astype(np.float32) / 32768


def knf_fbank(samples: np.ndarray, num_bins: int = 80) -> np.ndarray:
    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.mel_opts.num_bins = num_bins
    extractor = knf.OnlineFbank(options)
    extractor.accept_waveform(16000, samples * 32768)
    extractor.input_finished()
    return np.stack([extractor.get_frame(i) for i in range(extractor.num_frames_ready)])


def feats_of(data_dir: Path) -> dict[str, np.ndarray]:
    return {utt: np.array(m) for utt, m in kaldiio.load_scp(str(data_dir / "feats.scp")).items()}


# --- features of one signal ---------------------------------------------------------------


def test_matches_kaldi_native_fbank_on_16_bit_wav(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(path, speech_like(), 16000, subtype="PCM_16")
    samples, rate = read_audio(str(path))
    ours = compute_features(samples, rate, FeatureConfig())
    reference = knf_fbank(samples)
    assert ours.dtype == np.float32 and ours.shape == reference.shape == (128, 80)
    assert np.abs(ours - reference).max() < 2e-3


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"snip_edges": False, "window_type": "hamming", "round_to_power_of_two": False},
        {"use_energy": True, "htk_compat": True, "raw_energy": False, "energy_floor": 1.0},
        {"use_energy": True, "num_mel_bins": 40, "low_freq": 64, "high_freq": -400},
        {"use_power": False, "use_log_fbank": False, "window_type": "rectangular"},
        {"preemphasis_coefficient": 0.0, "remove_dc_offset": False, "window_type": "blackman"},
        {"vtln_warp": 0.9, "subtract_mean": True, "window_type": "hanning", "frame_shift": 12.5},
    ],
)
def test_equals_torchaudio_kaldi_fbank(options: dict) -> None:
    config = FeatureConfig(**options)
    samples = speech_like(seed=1)
    ours = torch.from_numpy(compute_features(samples, 16000, config))
    waveform = torch.from_numpy(samples * 32768).unsqueeze(0)
    reference = kaldi.fbank(
        waveform, **{name: getattr(config, name) for name in TORCHAUDIO_OPTIONS}
    )
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("rate", "channels"), [(22050, 1), (48000, 2)])
def test_other_rates_resample_to_the_right_number_of_frames(
    tmp_path: Path, rate: int, channels: int
) -> None:
    seconds = 1.234
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "a.wav"
    soundfile.write(path, np.stack([tone] * channels, axis=1), rate, subtype="PCM_16")
    samples, file_rate = read_audio(str(path))
    feats = compute_features(samples, file_rate, FeatureConfig())
    resampled = -(-len(samples) * 16000 // rate)
    assert len(feats) == 1 + (resampled - 400) // 160
    native = compute_features(
        (0.3 * np.sin(2 * np.pi * 440 * np.arange(resampled) / 16000)).astype(np.float32),
        16000,
        FeatureConfig(),
    )
    peak = native.argmax(axis=1)
    np.testing.assert_array_equal(feats.argmax(axis=1), peak)
    rows = np.arange(len(peak))
    assert np.abs(feats[rows, peak] - native[rows, peak]).max() < 0.05


def test_upsampling_is_an_error_unless_allowed() -> None:
    samples = speech_like(rate=8000)
    with pytest.raises(SpeechEQError, match="utterance 'u1'.*8000 Hz.*--allow-upsample=true"):
        compute_features(samples, 8000, FeatureConfig(), who="utterance 'u1'")
    feats = compute_features(samples, 8000, FeatureConfig(allow_upsample=True))
    assert len(feats) == 1 + (len(samples) * 2 - 400) // 160
    with pytest.raises(SpeechEQError, match="downsampling is off"):
        compute_features(samples, 22050, FeatureConfig(allow_downsample=False))


def test_audio_shorter_than_a_frame_is_an_error() -> None:
    with pytest.raises(SpeechEQError, match="utterance 'u1': 0.010 s of audio is shorter"):
        compute_features(np.zeros(160, np.float32), 16000, FeatureConfig(), who="utterance 'u1'")


# --- pitch ------------------------------------------------------------------------------------


def test_pitch_tracks_tones_and_is_frame_aligned() -> None:
    config = FeatureConfig(pitch=True)
    t = np.arange(16000) / 16000
    for f0 in (70.0, 120.0, 220.0, 350.0):
        tone = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3))
        estimate, nccf = track_pitch(torch.from_numpy(tone.astype(np.float32)), config)
        assert abs(float(estimate[3:-3].median()) / f0 - 1) < 0.01
        assert float(nccf[3:-3].median()) > 0.95
    samples = speech_like()
    for snip_edges in (True, False):
        with_pitch = compute_features(
            samples, 16000, FeatureConfig(pitch=True, snip_edges=snip_edges)
        )
        plain = compute_features(samples, 16000, FeatureConfig(snip_edges=snip_edges))
        assert with_pitch.shape == (len(plain), 83)
        np.testing.assert_array_equal(with_pitch[:, :80], plain)


def test_normalized_pitch_rises_with_f0() -> None:
    rate, seconds = 16000, 2.0
    t = np.arange(int(rate * seconds)) / rate
    f0 = 100 * 3 ** (t / seconds)  # 100 Hz -> 300 Hz
    phase = 2 * np.pi * np.cumsum(f0) / rate
    chirp = sum(0.3 / k * np.sin(k * phase) for k in (1, 2, 3)).astype(np.float32)
    pitch = compute_features(chirp, rate, FeatureConfig(pitch=True))[:, 80:]
    voicing, normalized, delta = pitch[10:-10].T
    frames = np.arange(len(normalized))
    assert np.corrcoef(frames, normalized)[0, 1] > 0.95
    assert (delta > 0).mean() > 0.95
    assert voicing.max() < -0.5  # strongly voiced throughout (Kaldi's scale: -1.5 .. 0.2)
    noise = np.random.default_rng(0).standard_normal(rate).astype(np.float32) * 0.1
    noise_voicing = compute_features(noise, rate, FeatureConfig(pitch=True))[:, 80]
    assert np.median(noise_voicing) > voicing.max()


# --- options ------------------------------------------------------------------------------


def test_conf_round_trips_and_errors_name_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "fbank.conf"
    conf.write_text("# filterbanks\n--num-mel-bins=40  # fewer\n\n--snip-edges=false\n--pitch\n")
    config = FeatureConfig.from_conf(conf)
    assert (config.num_mel_bins, config.snip_edges, config.pitch, config.dim) == (
        40,
        False,
        True,
        43,
    )
    assert FeatureConfig.parse(config.to_conf()) == config
    assert FeatureConfig.parse(FeatureConfig().to_conf()) == FeatureConfig()
    assert "--dither=0.0\n" in FeatureConfig().to_conf()
    for text, message in [
        ("--num-mel-bins=80\n--num-mel-bin=40\n", "fbank.conf:2: unknown feature option"),
        ("--num-mel-bins=80\nnum-mel-bins=40\n", "fbank.conf:2: malformed line"),
        ("--frame-shift=ten\n", "fbank.conf:1: --frame-shift expects a number, got 'ten'"),
        ("\n--snip-edges=maybe\n", "fbank.conf:2: --snip-edges expects true or false"),
        ("--low-freq=9000\n", "fbank.conf: --low-freq and --high-freq must satisfy"),
    ]:
        conf.write_text(text)
        with pytest.raises(SpeechEQError, match=message):
            FeatureConfig.from_conf(conf)
    with pytest.raises(SpeechEQError, match="missing.conf: feature conf file not found"):
        FeatureConfig.from_conf(tmp_path / "missing.conf")


# --- CMVN statistics ------------------------------------------------------------------------


def test_cmvn_stats_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    mats = [rng.normal(3.0, 2.0, size=(n, 5)).astype(np.float32) for n in (7, 30, 12)]
    stats = [cmvn.utterance_stats(m) for m in mats]
    assert stats[0].shape == (2, 6) and stats[0].dtype == np.float64
    np.testing.assert_allclose(stats[1][0, :5], mats[1].astype(np.float64).sum(axis=0))
    np.testing.assert_allclose(stats[1][1, :5], np.square(mats[1].astype(np.float64)).sum(axis=0))
    assert stats[1][0, 5] == 30 and stats[1][1, 5] == 0
    everything = np.concatenate(mats).astype(np.float64)
    mean, std = cmvn.mean_std(cmvn.sum_stats(stats))
    np.testing.assert_allclose(mean, everything.mean(axis=0))
    np.testing.assert_allclose(std, everything.std(axis=0))
    ones = cmvn.utterance_stats(np.ones((4, 3), np.float32))
    _, floored = cmvn.mean_std(ones, floor=1e-4)
    np.testing.assert_allclose(floored, 1e-2)


# --- stage 2 on a data directory --------------------------------------------------------------


def test_make_feats_writes_ark_scp_tables_and_cmvn(datadir: Path) -> None:
    config = FeatureConfig()
    report = make_feats(datadir, config)
    assert (report.utterances, report.frames, report.dim) == (32, 32 * 48, 80)
    assert report.seconds == pytest.approx(16.0) and report.skipped == {}
    assert validate(datadir) == []
    data = DataDir.load(datadir)
    feats = feats_of(datadir)
    assert sorted(feats) == data.utts
    lines = (datadir / "feats.scp").read_text().splitlines()
    assert lines == sorted(lines) and all(Path(line.split()[1]).is_absolute() for line in lines)
    utt = data.utts[5]
    np.testing.assert_array_equal(
        feats[utt], compute_features(*read_audio(data.get("wav.scp")[utt]), config)
    )
    assert data.get("utt2num_frames")[utt] == "48" and data.get("utt2dur")[utt] == "0.5"
    assert data.conf["feats.conf"] == config.to_conf()
    stats = cmvn.speaker_stats(data, datadir)
    assert sorted(stats) == data.speakers
    spk3 = data.spk2utt["spk3"]
    expected = cmvn.sum_stats(cmvn.utterance_stats(feats[u]) for u in spk3)
    np.testing.assert_allclose(stats["spk3"], expected)
    assert sorted(p.name for p in (datadir / "data").iterdir()) == [
        "cmvn.1.ark",
        "cmvn.ark",
        "feats.1.ark",
        "feats.1.json",
        "feats.1.scp",
    ]


def test_speakers_split_into_contiguous_balanced_jobs() -> None:
    spk2utt = {f"s{i}": [f"s{i}-{j}" for j in range(n)] for i, n in enumerate([5, 1, 1, 3, 6, 2])}
    assert split_speakers(spk2utt, 3) == [["s0", "s1"], ["s2", "s3"], ["s4", "s5"]]
    assert split_speakers(spk2utt, 10) == [[s] for s in sorted(spk2utt)]
    assert split_speakers(spk2utt, 1) == [sorted(spk2utt)]


def _multithreaded_product() -> None:
    torch.set_num_threads(2)
    matrix = torch.ones(600, 600)
    assert float((matrix @ matrix)[0, 0]) == 600.0


def test_job_processes_may_use_threads_after_this_one_did() -> None:
    _multithreaded_product()  # a process forked after this would hang in the same product
    worker = worker_context().Process(target=_multithreaded_product)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():
        worker.kill()
    assert worker.exitcode == 0


def test_two_jobs_give_the_same_features_as_one(datadir: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy"
    shutil.copytree(datadir, other)
    make_feats(datadir, FeatureConfig(), nj=1)
    report = make_feats(other, FeatureConfig(), nj=2)
    assert report.jobs == 2
    one, two = feats_of(datadir), feats_of(other)
    assert sorted(one) == sorted(two)
    for utt in one:
        np.testing.assert_array_equal(one[utt], two[utt])
    first_job = read_table(other / "data" / "feats.1.scp")
    assert {utt.split("-")[0] for utt in first_job} == {"spk1", "spk2"}
    assert read_table(datadir / "cmvn.scp").keys() == read_table(other / "cmvn.scp").keys()
    np.testing.assert_allclose(
        cmvn.sum_stats(cmvn.speaker_stats(DataDir.load(datadir), datadir).values()),
        cmvn.sum_stats(cmvn.speaker_stats(DataDir.load(other), other).values()),
    )


def test_an_interrupted_run_is_finished_by_running_again(datadir: Path) -> None:
    make_feats(datadir, FeatureConfig(), nj=2)
    expected = feats_of(datadir)
    folder = datadir / "data"
    first_ark_time = (folder / "feats.1.ark").stat().st_mtime_ns
    # Simulate a run killed while job 2 was writing: no tables, no record, a partial ark.
    for name in ("feats.scp", "utt2num_frames", "cmvn.scp"):
        (datadir / name).unlink()
    (folder / "feats.2.json").unlink()
    ark = folder / "feats.2.ark"
    ark.write_bytes(ark.read_bytes()[: ark.stat().st_size // 2])
    (folder / ".feats.2.scp.abc123.tmp").write_text("partial")
    report = make_feats(datadir, FeatureConfig(), nj=2)
    assert (report.jobs, report.reused_jobs) == (2, 1)
    assert (folder / "feats.1.ark").stat().st_mtime_ns == first_ark_time
    assert not list(folder.glob(".*"))
    assert validate(datadir) == []
    again = feats_of(datadir)
    assert sorted(again) == sorted(expected)
    for utt in expected:
        np.testing.assert_array_equal(again[utt], expected[utt])
    # Other options make every job stale.
    assert make_feats(datadir, FeatureConfig(num_mel_bins=40), nj=2).reused_jobs == 0


@pytest.mark.slow
def test_jobs_on_slurm_write_the_local_bytes_and_a_failed_one_is_redone_alone(
    datadir: Path, tmp_path: Path
) -> None:
    on_slurm = tmp_path / "on_slurm"
    shutil.copytree(datadir, on_slurm)
    bad = DataDir.load(datadir).utts[-1]  # the last speaker's: job 2
    audio = Path(DataDir.load(datadir).get("wav.scp")[bad])
    make_feats(datadir, FeatureConfig(), nj=2, launcher=LocalJobs(at_once=1, threads=1))
    options = SlurmOptions(jobs=2, cpus_per_job=1, cluster="local")
    cluster = SlurmCluster(tmp_path / "submitit", options)
    sound = audio.read_bytes()
    audio.write_bytes(b"not audio")
    with pytest.raises(
        SpeechEQError, match=rf"1 of 2 feature job\(s\) failed: features 2/2: utterance '{bad}'"
    ):
        make_feats(on_slurm, FeatureConfig(), nj=2, launcher=cluster)
    folder = on_slurm / "data"
    assert (folder / "feats.1.json").is_file() and not (folder / "feats.2.json").exists()
    assert not (on_slurm / "feats.scp").exists()
    first_job = (folder / "feats.1.ark").stat().st_mtime_ns
    audio.write_bytes(sound)
    report = make_feats(on_slurm, FeatureConfig(), nj=2, launcher=cluster)
    assert (report.jobs, report.reused_jobs) == (2, 1)
    assert make_feats(on_slurm, FeatureConfig(), nj=2, launcher=cluster).reused_jobs == 2
    assert (folder / "feats.1.ark").stat().st_mtime_ns == first_job
    for name in ("feats.1.ark", "feats.2.ark", "cmvn.ark"):
        assert (folder / name).read_bytes() == (datadir / "data" / name).read_bytes(), name
    here, there = str(datadir.resolve()), str(on_slurm.resolve())
    local_scp = read_table(datadir / "feats.scp")
    assert read_table(on_slurm / "feats.scp") == {
        utt: place.replace(here, there) for utt, place in local_scp.items()
    }


@pytest.mark.parametrize("damage", ["corrupt", "empty", "missing"])
def test_bad_audio_names_the_utterance_and_writes_nothing(datadir: Path, damage: str) -> None:
    data = DataDir.load(datadir)
    bad = data.utts[9]
    path = Path(data.get("wav.scp")[bad])
    if damage == "corrupt":
        path.write_bytes(b"RIFF....WAVEfmt garbage")
    elif damage == "empty":
        soundfile.write(path, np.zeros(0), 16000, subtype="PCM_16")
    else:
        path.unlink()
    before = {p.name: p.read_bytes() for p in datadir.iterdir() if p.is_file()}
    with pytest.raises(SpeechEQError, match=f"utterance '{bad}'.*{path.name}"):
        make_feats(datadir, FeatureConfig(), nj=2)
    assert {p.name: p.read_bytes() for p in datadir.iterdir() if p.is_file()} == before
    assert not list((datadir / "data").glob(".*"))
    assert not (datadir / "data" / "feats.1.json").exists()


def test_skip_bad_drops_the_utterances_keeps_their_lines_and_reports_them(
    datadir: Path,
) -> None:
    data = DataDir.load(datadir)
    corrupt, low_rate = data.utts[3], data.utts[20]
    Path(data.get("wav.scp")[corrupt]).write_bytes(b"not audio at all")
    soundfile.write(data.get("wav.scp")[low_rate], np.zeros(4000), 8000, subtype="PCM_16")
    tables = {p.name: p.read_bytes() for p in datadir.iterdir() if p.is_file()}
    report = make_feats(datadir, FeatureConfig(), nj=2, skip_bad=True)
    assert sorted(report.skipped) == [corrupt, low_rate]
    assert "cannot decode" in report.skipped[corrupt]
    assert "upsampling is off" in report.skipped[low_rate]
    assert report.utterances == 30
    kept = DataDir.load(datadir)
    assert corrupt not in kept.utts and low_rate not in kept.get("utt2emo")
    assert sorted(feats_of(datadir)) == kept.utts
    assert validate(datadir) == []
    # What was dropped is kept, as Kaldi's fix_data_dir.sh keeps it, with the reasons.
    backup = datadir / BACKUP
    kept_tables = {path.name: path.read_bytes() for path in backup.iterdir()}
    assert {"wav.scp", "utt2spk", "utt2emo", "skipped"} <= set(kept_tables)
    assert all(kept_tables[name] == tables[name] for name in kept_tables if name != "skipped")
    assert read_table(backup / "skipped") == report.skipped
    # Jobs that skipped utterances are not reused by a run that does not skip; the two jobs
    # run in parallel, so either bad utterance may be the one reported.
    for name, content in tables.items():
        (datadir / name).write_bytes(content)
    with pytest.raises(SpeechEQError, match=f"utterance '({corrupt}|{low_rate})'"):
        make_feats(datadir, FeatureConfig(), nj=2)


def test_cli_runs_on_a_tiny_data_dir(datadir: Path, tmp_path: Path) -> None:
    conf = tmp_path / "fbank.conf"
    conf.write_text("--num-mel-bins=40\n--pitch=true\n")
    result = CliRunner().invoke(app, ["feats", str(datadir), "--conf", str(conf), "--nj", "2"])
    assert result.exit_code == 0, result.output
    assert "x real time" in result.output and "43" in result.output
    assert FeatureConfig.parse((datadir / "conf" / "feats.conf").read_text()).dim == 43
    result = CliRunner().invoke(app, ["feats", str(tmp_path / "nowhere")])
    assert isinstance(result.exception, SpeechEQError)


# --- real data ------------------------------------------------------------------------------


@pytest.mark.corpora
def test_real_casia_subset(tmp_path: Path) -> None:
    casia = corpus_dir("casia")
    wav, utt2spk = {}, {}
    for speaker in ("liuchanhg", "wangzhe"):
        for path in sorted((casia / speaker).glob("*/*.wav"))[::50][:6]:
            utt = f"{speaker}-{path.parent.name}-{path.stem}"
            wav[utt], utt2spk[utt] = str(path), speaker
    assert len(wav) == 12
    data_dir = tmp_path / "casia"
    DataDir({"wav.scp": wav, "utt2spk": utt2spk}).save(data_dir)
    config = FeatureConfig(pitch=True)
    report = make_feats(data_dir, config, nj=2)
    assert report.utterances == 12 and 0.96 * 12 <= report.seconds <= 4.93 * 12
    data = DataDir.load(data_dir)
    feats = feats_of(data_dir)
    for utt, matrix in feats.items():
        samples, rate = read_audio(wav[utt])
        assert rate == 16000 and int(data.get("utt2num_frames")[utt]) == len(matrix)
        assert np.abs(matrix[:, :80] - knf_fbank(samples)).max() < 0.05
    mean, std = cmvn.mean_std(cmvn.sum_stats(cmvn.speaker_stats(data, data_dir).values()))
    assert np.all(np.isfinite(mean)) and np.all(std > 0.1)
    # F0 follows Kaldi's pitch tracker; in neutral speech the female speaker's is the higher.
    options = knf.ProcessPitchOptions(add_raw_log_pitch=True)
    f0 = {}
    for speaker in ("liuchanhg", "wangzhe"):
        samples = read_audio(wav[f"{speaker}-neutral-201"])[0]
        estimate, _ = track_pitch(torch.from_numpy(samples), config)
        kaldi_pitch = knf.compute_and_process_kaldi_pitch(
            knf.PitchExtractionOptions(), options, samples * 32768
        )
        voiced = kaldi_pitch[:, 0] < -0.3
        error = np.abs(np.log(estimate.numpy()) - kaldi_pitch[:, 3])[voiced]
        assert np.median(error) < 0.02 and (error > 0.1).mean() < 0.2
        f0[speaker] = float(np.median(estimate.numpy()[voiced]))
    assert f0["liuchanhg"] > 1.5 * f0["wangzhe"]
    assert os.path.isabs(read_table(data_dir / "cmvn.scp")["wangzhe"].rsplit(":", 1)[0])
