"""A recording's emotion timeline as a picture: posteriors over time above, the waveform and its
speech below, each segment's emotion written over it (matplotlib, drawn off-screen)."""

from __future__ import annotations

from pathlib import Path

from speecheq.fileio import atomic_write
from speecheq.inference.timeline import Timeline


def plot_timeline(timeline: Timeline, path: Path) -> None:
    """Write the timeline as a PNG at ``path``."""
    from matplotlib.figure import Figure

    width = min(40.0, max(10.0, timeline.duration / 6))
    figure = Figure(figsize=(width, 5.5))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    colours = {name: f"C{index % 10}" for index, name in enumerate(timeline.classes)}
    for index, name in enumerate(timeline.classes):
        top.plot(
            timeline.track_times,
            timeline.track[:, index],
            ".",
            ms=2,
            color=colours[name],
            label=name,
        )
    for segment in timeline.segments:
        colour = colours.get(segment.emotion or "", "grey")
        top.axvspan(segment.start, segment.end, ymin=0.94, ymax=1.0, color=colour, alpha=0.8)
        top.text((segment.start + segment.end) / 2, 1.06, segment.emotion or "", ha="center",
                 va="bottom", fontsize=7, color=colour)  # fmt: skip
    top.set_ylim(0, 1.12)
    top.set_ylabel("posterior")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    top.set_title(f"{timeline.path}: emotion over time")
    envelope = timeline.envelope
    if len(envelope):
        bottom.fill_between(envelope[:, 0], envelope[:, 1], envelope[:, 2], color="0.4", lw=0)
    for start, end in timeline.speech:
        bottom.axvspan(start, end, color="C2", alpha=0.2)
    bottom.set_xlim(0, timeline.duration)
    bottom.set_xlabel("time (s); shaded: speech found")
    bottom.set_ylabel("waveform")
    figure.tight_layout()
    with atomic_write(path, "wb") as out:
        figure.savefig(out, format="png", dpi=100)
