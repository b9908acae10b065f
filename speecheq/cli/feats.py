"""``speecheq feats <data-dir>``: stage 2, log-mel filterbanks to ark/scp, with CMVN stats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.cli.options import (
    CpusOption,
    GpusOption,
    LauncherOption,
    MemOption,
    PartitionOption,
    TimeOption,
    slurm_options,
)
from speecheq.console import note, print_table


def feats_command(
    data_dir: Annotated[Path, typer.Argument(help="The data directory (needs wav.scp, utt2spk).")],
    conf: Annotated[
        Path | None,
        typer.Option(
            help="A Kaldi-style conf file ('--num-mel-bins=80' per line); default: 80 mel bins, "
            "25 ms frames every 10 ms at 16 kHz, no dither, no pitch."
        ),
    ] = None,
    nj: Annotated[int, typer.Option(min=1, help="Jobs (parts of the data), split by speaker.")] = 1,
    skip_bad: Annotated[
        bool,
        typer.Option(
            "--skip-bad",
            help="Drop utterances whose audio is missing, corrupt, empty or at a forbidden "
            "rate (and list them) instead of stopping.",
        ),
    ] = False,
    kind: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="fbank (log-mel filterbanks) or ssl (a pretrained upstream's layers); "
            "[default: ssl with --upstream, else fbank]",
        ),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            help="With --type ssl: a checkpoint directory (wav2vec2, HuBERT, WavLM, "
            "data2vec-audio, Whisper) with config.json and its weights, or a hub model id, "
            "org/name[@revision], fetched once into the hub cache (HF_HUB_OFFLINE honoured).",
        ),
    ] = None,
    layers: Annotated[
        str, typer.Option(help="With --type ssl: the hidden states kept: all, 0,6,12 or 6-12.")
    ] = "all",
    dtype: Annotated[
        str, typer.Option(help="With --type ssl: float16 (half the disk) or float32.")
    ] = "float16",
    device: Annotated[
        str, typer.Option(help="With --type ssl: where the upstream runs (cpu or cuda).")
    ] = "cpu",
    launcher: LauncherOption = "local",
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs run at a time (default: all --nj locally, 8 on Slurm)."),
    ] = None,
    num_threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="CPU threads of each job (default: locally, the cores divided among the jobs "
            "for an upstream, 1 for filterbanks; on Slurm, its cores).",
            show_default=False,
        ),
    ] = None,
    partition: PartitionOption = None,
    gpus_per_job: GpusOption = 0,
    cpus_per_job: CpusOption = 4,
    mem_gb: MemOption = None,
    time: TimeOption = 4 * 60,
) -> None:
    """Compute Kaldi-compatible log-mel filterbanks for every utterance (stage 2).

    Writes data/feats.JOB.ark with per-job scp files, then feats.scp, utt2num_frames,
    utt2dur, per-speaker CMVN stats (cmvn.scp, data/cmvn.ark) and conf/feats.conf (the
    options used) into the data directory. Audio at another rate is resampled (upsampling
    only with --allow-upsample=true in the conf). With --pitch=true in the conf, 3 pitch
    features follow the filterbanks (voicing, normalized log-F0, delta; like Kaldi's
    compute-and-process-kaldi-pitch-feats, but not bit-identical to it). An interrupted run is
    finished by running the same command again: complete jobs are reused.

    With --type ssl (implied by --upstream), the features are the chosen hidden layers of a
    pretrained upstream (a checkpoint directory, or a hub id downloaded once into the hub
    cache), side by side in each frame, stored as float16 by default; conf/feats.conf names
    the upstream, its hub id and commit, and the digests of its config and weights.

    The --nj jobs run here (--launcher local: --jobs at a time) or as Slurm jobs through
    submitit (--launcher slurm, the options of a recipe's cmd.sh; logs in DATA_DIR/log/), each
    writing the same files; a failed job is named, and the same command redoes it alone.
    """
    from speecheq.cluster import SlurmCluster
    from speecheq.errors import SpeechEQError
    from speecheq.features import BACKUP, FeatureConfig, LocalJobs, SSLConfig, make_feats

    config: FeatureConfig | SSLConfig
    kind = kind or ("ssl" if upstream is not None else "fbank")
    if kind == "fbank" and upstream is not None:
        raise SpeechEQError("--upstream is for --type ssl; filterbanks take no upstream")
    if kind == "ssl" and conf is not None:
        raise SpeechEQError("--conf is for --type fbank; an upstream's features take no conf")
    if kind == "ssl":
        if upstream is None:
            raise SpeechEQError("--type ssl needs --upstream (a checkpoint directory or a hub id)")
        config = SSLConfig.create(upstream, layers, dtype)
    elif kind == "fbank":
        config = FeatureConfig.from_conf(conf) if conf is not None else FeatureConfig()
    else:
        raise SpeechEQError(f"--type must be fbank or ssl, got '{kind}'")
    slurm = slurm_options(
        launcher, jobs, num_threads, partition, gpus_per_job, cpus_per_job, mem_gb, time
    )
    run_on = (
        LocalJobs(jobs, num_threads)
        if slurm is None
        else SlurmCluster(data_dir / "log" / "submitit", slurm)
    )
    report = make_feats(data_dir, config, nj=nj, skip_bad=skip_bad, device=device, launcher=run_on)
    if report.skipped:
        print_table(
            f"{len(report.skipped)} utterance(s) skipped",
            ["utterance", "why"],
            sorted(report.skipped.items()),
        )
        note(f"{data_dir / BACKUP}: the tables as they were, and why each was skipped")
    jobs = f"{report.jobs} ({report.reused_jobs} reused)" if report.reused_jobs else report.jobs
    print_table(
        f"features -> {data_dir}",
        ["what", "value"],
        [
            ("utterances", report.utterances),
            ("hours of audio", f"{report.hours:.3f}"),
            ("frames", report.frames),
            ("dim", report.dim),
            ("jobs", jobs),
            ("wall time (s)", f"{report.wall_seconds:.1f}"),
            ("x real time", f"{report.real_time_factor:.0f}"),
        ],
    )
