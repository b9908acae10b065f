"""Heat maps of confusion matrices (matplotlib, drawn off-screen with the Agg canvas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speecheq.fileio import atomic_write
from speecheq.metrics import ScaleScores


def plot_confusion(scores: ScaleScores, title: str, path: str | Path) -> None:
    """Write a PNG heat map: each reference row normalised to shares, annotated with counts."""
    from matplotlib.figure import Figure

    counts = np.array(scores.confusion, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    ticks = np.arange(len(scores.classes))
    side = 2.0 + 0.7 * len(scores.classes)
    figure = Figure(figsize=(side + 1.2, side))
    axes = figure.add_subplot()
    image = axes.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
    figure.colorbar(image, ax=axes, label="share of the reference row")
    axes.set_xticks(ticks, scores.classes, rotation=45, ha="right")
    axes.set_yticks(ticks, scores.classes)
    axes.set_xlabel("hypothesis")
    axes.set_ylabel("reference")
    axes.set_title(title)
    for i, j in np.ndindex(counts.shape):
        axes.text(
            j,
            i,
            f"{shares[i, j]:.2f}\n({counts[i, j]})",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if shares[i, j] > 0.5 else "black",
        )
    figure.tight_layout()
    with atomic_write(path, "wb") as out:
        figure.savefig(out, format="png", dpi=120)
