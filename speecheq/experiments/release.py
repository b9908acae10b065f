"""The release model: the recipe's system trained once more on every speaker, to be used.

Cross-validation says how well a recipe's system does on speakers it never heard; the model to
use is trained on all of them with the same config and tasks, for the median of the epochs at
which the folds' models were kept (their best valid epochs), keeping the last epoch (no speaker
is left to choose one on). ``OUT`` gets ``model.pt``, ``model.onnx`` and ``MODEL_CARD.md``: what
it was trained on, its classes, the cross-validated figures (± over folds and seeds) and the
classic baselines' beside them, the corpus's terms, its intended use and its limits.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speecheq.config import load_config
from speecheq.console import note
from speecheq.corpora import corpus_terms
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.experiments.ensemble import ENSEMBLE
from speecheq.experiments.plan import Plan
from speecheq.fileio import atomic_write
from speecheq.inference.export import export_model
from speecheq.modelfile import load_model, load_torch, save_ensemble
from speecheq.train.state import Resume
from speecheq.train.trainer import MODEL, train

CARD = "MODEL_CARD.md"


def kept_epochs(plan: Plan) -> list[int]:
    """The epoch each trained run of ``plan`` kept (its best on the valid set)."""
    epochs = []
    for run in plan.runs:
        path = Path(run.exp_dir) / MODEL
        if not path.is_file():
            raise SpeechEQError(f"{path}: missing; train the folds first (stage 4)")
        epochs.append(int(load_torch(path, "model file")["epoch"]))
    return epochs


@dataclass(frozen=True)
class CrossValidated:
    """A system's cross-validated emotion figures (in %): the mean over seeds of each seed's
    fold mean, its std over seeds and over folds (of the seed-averaged fold figures)."""

    name: str
    ua: float
    wa: float
    seeds_std: float | None
    folds_std: float | None
    seeds: int
    folds: int


def cross_validated(name: str, score_files: Sequence[Path]) -> CrossValidated:
    """The figures of the reports in ``score_files`` (one ``scores.json`` per seed)."""
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in score_files]
    per_seed = np.array(
        [[fold["metrics"]["emotion UA"] for fold in report["folds"]] for report in reports]
    )
    wa = np.mean([report["mean"]["emotion WA"] for report in reports])
    seed_means = per_seed.mean(axis=1)
    fold_means = per_seed.mean(axis=0)
    return CrossValidated(
        name,
        100 * float(seed_means.mean()),
        100 * float(wa),
        100 * float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else None,
        100 * float(np.std(fold_means, ddof=1)) if len(fold_means) > 1 else None,
        len(reports),
        per_seed.shape[1],
    )


def _row(system: CrossValidated) -> str:
    def spread(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    return (
        f"| {system.name} | {system.ua:.1f} | {system.wa:.1f} | {spread(system.seeds_std)} | "
        f"{spread(system.folds_std)} | {system.seeds} x {system.folds} |"
    )


def model_card(
    model: Path,
    data_dir: Path,
    corpora: Sequence[str],
    systems: Sequence[CrossValidated],
    epochs: Sequence[int],
    seeds: Sequence[int] = (),
) -> str:
    """The text of ``MODEL_CARD.md`` for the release ``model`` trained on ``data_dir`` (of
    ``corpora``); ``seeds``: those of its members, for an ensemble."""
    trained = load_model(model)
    data = DataDir.load(data_dir)
    emotion = trained.task("emotion")
    classes = ", ".join(emotion.classes) if emotion is not None else "(no emotion task)"
    genders = data.get("spk2gender")
    lines = [
        f"# Model card: {model.parent.name} ({', '.join(corpora)})",
        "",
        "## The model",
        "",
        f"- File: `{model.name}` (and `model.onnx`, its ONNX export); run it with `speecheq "
        f"infer {model.name} AUDIO` or `Recognizer.load`.",
        f"- Emotion classes: {classes}.",
        f"- Tasks: {', '.join(task.name for task in trained.tasks)}.",
        *([_ENSEMBLE_LINE.format(len(seeds), ", ".join(map(str, seeds)))] if seeds else []),
        f"- Trained on every labelled utterance of `{data_dir}`: {len(data.utts)} utterances "
        f"of {len(data.speakers)} speakers ({sum(g == 'f' for g in genders.values())} female, "
        f"{sum(g == 'm' for g in genders.values())} male), for {trained.epoch} epochs (the "
        f"median of the epochs the cross-validation folds kept: {sorted(epochs)}).",
        f"- Config: `{'seed*/' if seeds else ''}config.yaml` beside it (model "
        f"{trained.config.model.encoder}, d_model {trained.config.model.d_model} x "
        f"{trained.config.model.num_layers} layers).",
        "",
        "## How well it does on speakers it never heard",
        "",
        "Cross-validated by the recipe's speaker-independent folds (this model's config and "
        "tasks, one model per fold and seed); emotion UA and WA in %, ± the sample std over "
        "seeds and over folds. The release model itself has no held-out speaker: these figures "
        "are the estimate.",
        "",
        "| system | UA | WA | ± seeds | ± folds | seeds x folds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(_row(system) for system in systems),
        "",
        "## Terms of the training data",
        "",
        *(f"- {corpus}: {corpus_terms(corpus)}" for corpus in corpora),
        "",
        "## Intended use and limits",
        "",
        "- For research on speech emotion recognition, and for prototypes that show a "
        "recording's emotional tone. Not for decisions about people (hiring, health, "
        "security, policing): the model's errors are frequent and not evenly spread.",
        "- It learnt from the speakers, language, recording conditions and (mostly acted) "
        "speaking styles of its training data; speech unlike them (other languages, natural "
        "conversation, noise, children) is outside what the figures above measure.",
        "- Figures on a few speakers vary much from speaker to speaker (± folds): expect that "
        "spread, not the mean, for any one new speaker.",
        *(_PER_SPEAKER if trained.cmvn.mode == "speaker" else []),
        "",
    ]
    return "\n".join(lines)


_ENSEMBLE_LINE = (
    "- An ensemble of {} networks, one per seed ({}; each in `seed<s>/`), whose posteriors it "
    "averages: one model file, run as any other."
)
"""The model card's line on an ensemble release."""

_PER_SPEAKER = [
    "- It normalises its features by speaker (per-speaker CMVN), and the figures above were "
    "measured so: give it each speaker's clips together, `speecheq infer model.pt CLIPS "
    "--utt2spk utt2spk` (or `Recognizer.predict_speakers`). A lone clip is normalised by the "
    "training speakers' pooled statistics, which scores well below those figures, and near "
    "chance on a recording channel unlike the training data's (CASIA's and EmoDB's "
    "RESULTS.md measure both; `tools/channel_check.py` measures a recipe's)."
]
"""The model card's limit of a model normalised by speaker."""


def release(
    exp_dir: Path,
    data_dir: Path,
    out_dir: Path,
    corpora: Sequence[str],
    baselines: Sequence[Path] = (),
    *,
    device: str = "auto",
    resume: Resume = "auto",
) -> Path:
    """Train the release model of the recipe's plan in ``exp_dir`` on all of ``data_dir`` (of
    ``corpora``, by preparer name) into ``out_dir``, export it to ONNX and write its model card
    (with the cross-validated figures of ``exp_dir`` and of the ``baselines``' folders); return
    the model file. It trains on the folds' unlabeled speech too, if they had any. A plan of
    several seeds releases their ensemble: one network per seed (``out_dir/seed<s>``), joined
    into one model file whose posteriors are theirs averaged."""
    plan = Plan.load(exp_dir)
    epochs = kept_epochs(plan)
    chosen = round(statistics.median(epochs))
    first = plan.runs[0]
    overrides = [o for o in first.overrides if not o.startswith(("optim.", "seed="))]
    overrides += [f"optim.epochs={chosen}", "optim.average_last=1"]
    inside = bool(load_config(first.config, overrides).model.upstream.path)
    seeds: list[int] = list(plan.summary.get("seeds") or [])
    if inside and len(seeds) > 1:
        note(f"release: a model with an upstream inside is released alone (seed {seeds[0]})")
        seeds = seeds[:1]
    ensemble = seeds if len(seeds) > 1 else []
    members = [out_dir / f"seed{seed}" for seed in ensemble] or [out_dir]
    for seed, member in zip(seeds or [None], members, strict=True):
        config = load_config(
            first.config, [*overrides, *([] if seed is None else [f"seed={seed}"])]
        )
        if first.tasks:
            config = config.with_tasks(first.tasks)
        note(f"release: {chosen} epochs on all of {data_dir} -> {member}")
        train(
            config,
            data_dir,
            data_dir,
            member,
            first.lang_dir,
            device=device,
            resume=resume,
            unlabeled_dir=list(first.unlabeled),
        )
    model = out_dir / MODEL
    if ensemble:
        save_ensemble([member / MODEL for member in members], model)
    if inside:
        note("release: a model with an upstream inside is not exported to ONNX yet")
    else:
        export_model(model, out_dir / "model.onnx", "onnx")
    systems = [cross_validated(exp_dir.name, _score_files(exp_dir, plan))]
    ensemble_scores = exp_dir / ENSEMBLE / "scores" / "scores.json"
    if ensemble and ensemble_scores.is_file():
        name = f"{exp_dir.name}, ensemble of the {len(ensemble)} seeds"
        systems.insert(0, cross_validated(name, [ensemble_scores]))
    for baseline in baselines:
        systems.append(cross_validated(baseline.name, [baseline / "scores" / "scores.json"]))
    with atomic_write(out_dir / CARD) as out:
        out.write(model_card(model, data_dir, corpora, systems, epochs, ensemble))
    return model


def _score_files(exp_dir: Path, plan: Plan) -> list[Path]:
    files = [Path(report.out_dir) / "scores.json" for report in plan.reports]
    missing = [path for path in files if not path.is_file()]
    if missing:
        raise SpeechEQError(f"{missing[0]}: missing; score the folds first (stage 5)")
    return files
