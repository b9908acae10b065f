"""``speecheq synth``: generate the synthetic mini corpus with eSpeak NG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.console import print_table, progress_bar


def synth_command(
    out_dir: Annotated[Path, typer.Argument(help="Where to write wav/ and metadata.tsv.")],
    num_utts: Annotated[int, typer.Option(help="Number of utterances.", min=1)] = 600,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same files.")] = 0,
    nj: Annotated[int, typer.Option(help="Number of synthesis processes.", min=1)] = 2,
) -> None:
    """Generate the synthetic mini corpus (eSpeak NG voices; needs nothing to download).

    8 voices (4 male, 4 female) speak English and Mandarin everyday sentences in 5 emotions
    (neutral, happy, angry, sad, fear) at 3 intensities, in an acted or a natural style, with
    arousal/valence/dominance values. Writes `wav/<speaker>/<utt>.wav` (16 kHz, 16-bit) and
    `metadata.tsv`, balanced over speakers, languages, styles, emotions and intensities; the
    same seed gives byte-identical files. Prepare it with `speecheq prepare mini`.
    """
    from speecheq.synth.corpus import generate_corpus

    with progress_bar("synthesising", total=num_utts) as advance:
        report = generate_corpus(out_dir, num_utts=num_utts, seed=seed, nj=nj, progress=advance)
    rows: list[tuple[str, str, object]] = [
        ("utterances", "", report.utterances),
        ("hours", "", f"{report.hours:.3f}"),
        *(("emotion", name, count) for name, count in report.emotions.items()),
        *(("speaker", name, count) for name, count in report.speakers.items()),
        ("wall time", "", f"{report.wall_seconds:.1f} s"),
    ]
    print_table(f"mini corpus -> {out_dir}", ["what", "value", "count"], rows)
