"""``speecheq infer`` (raw audio: utterances, or long recordings as a timeline), ``speecheq
embed`` (utterance embeddings) and ``speecheq export`` (ONNX, TorchScript)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from speecheq.cli.options import DeviceOption, ThreadsOption, set_threads
from speecheq.console import note, print_table, progress_bar
from speecheq.errors import SpeechEQError

SkipBadOption = Annotated[
    bool,
    typer.Option(
        "--skip-bad",
        help="Leave out files that cannot be read, and list them, instead of stopping.",
    ),
]


def infer_command(
    model: Annotated[
        Path, typer.Argument(help="A model file (EXP/model.pt), or an export (.onnx, .ts).")
    ],
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Audio files, folders of them, a wav.scp, or a list of files."),
    ],
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated tasks to report (default: the emotion tasks the model has: "
            "emotion, intensity, dimensional; auxiliary ones such as gender, phone on request)."
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write them as CSV here.")] = None,
    timeline: Annotated[
        bool,
        typer.Option(
            "--timeline",
            help="Long recordings: find speech, classify windows, merge them into segments "
            "(start, end, emotion, posteriors) written to --out-dir.",
        ),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="With --timeline: where <recording>.json/.csv, segments, utt2emo go."),
    ] = None,
    plot: Annotated[
        bool, typer.Option("--plot", help="With --timeline: also <recording>.png.")
    ] = False,
    window: Annotated[float, typer.Option(help="With --timeline: window length, seconds.")] = 3.0,
    hop: Annotated[float, typer.Option(help="With --timeline: window hop, seconds.")] = 1.0,
    min_segment: Annotated[
        float, typer.Option(help="With --timeline: shortest segment, seconds.")
    ] = 1.0,
    vad_threshold: Annotated[
        float, typer.Option(help="With --timeline: speech probability that starts speech.")
    ] = 0.5,
    utt2spk: Annotated[
        Path | None,
        typer.Option(
            "--utt2spk",
            help="A table '<input> <speaker>' (Kaldi's utt2spk; an input is named by its "
            "wav.scp key or its path as given): each speaker's inputs are normalised together, "
            "as a recipe's folds are scored, where the model normalises by speaker (without "
            "it, by the training speakers' pooled statistics).",
        ),
    ] = None,
    skip_bad: SkipBadOption = False,
    device: DeviceOption = "cpu",
    num_threads: ThreadsOption = None,
) -> None:
    """Recognise emotion in raw audio, with a model file or an exported model.

    Utterances are batched by length; the results (each task's value, typed, and the emotion
    posteriors) are printed and, with --json/--csv, written with the model's identity. With
    --timeline each input is a long recording: its speech is found with a voice activity
    detector, cut into windows and merged into segments of one emotion.
    """
    from speecheq.inference import Recognizer, TimelineOptions
    from speecheq.inference.inputs import audio_inputs

    set_threads(num_threads)
    items = audio_inputs(inputs)
    recognizer = Recognizer.load(model, tasks=tasks.split(",") if tasks else None, device=device)
    speakers = _speakers(utt2spk, items) if utt2spk is not None else None
    if timeline:
        if speakers is not None:
            raise SpeechEQError("--utt2spk: a timeline normalises each recording by its own speech")
        options = TimelineOptions(window, hop, min_segment, vad_threshold)
        _timelines(recognizer, items, options, out_dir, plot, skip_bad)
    else:
        if speakers is not None and not recognizer.per_speaker:
            note(f"{model}: its CMVN is not per speaker, so --utt2spk changes nothing")
        _utterances(recognizer, items, json_out, csv_out, skip_bad, speakers)


def _speakers(utt2spk: Path, items: list[tuple[str, str]]) -> dict[str, str]:
    """The speaker of every input, from a Kaldi ``utt2spk`` table."""
    from speecheq.fileio import read_table

    table = read_table(utt2spk)
    missing = [name for name, _ in items if name not in table]
    if missing:
        raise SpeechEQError(
            f"{utt2spk}: no speaker for input '{missing[0]}'"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    return table


def _utterances(
    recognizer: object,
    items: list[tuple[str, str]],
    json_out: Path | None,
    csv_out: Path | None,
    skip_bad: bool,
    speakers: dict[str, str] | None,
) -> None:
    from speecheq.inference import Recognizer
    from speecheq.inference.outputs import write_predictions

    assert isinstance(recognizer, Recognizer)
    features = _read(recognizer.features, items, skip_bad)
    if speakers is None:
        results = list(recognizer.predict_many(features))
    else:
        results = list(recognizer.predict_speakers(features, speakers))
    write_predictions(results, recognizer.identity, json_path=json_out, csv_path=csv_out)
    names = [task.name for task in recognizer.tasks]
    rows = []
    for name, prediction in results:
        confidence = max(prediction.posteriors.values()) if prediction.posteriors else None
        values = [_shown(prediction.values.get(task)) for task in names]
        rows.append([name, *values, "-" if confidence is None else f"{confidence:.2f}"])
    print_table(f"{recognizer.backend.path}", ["file", *names, "confidence"], rows)


def _read(featurize: Callable, items: list[tuple[str, str]], skip_bad: bool) -> list:
    """Every input featurized under a progress bar; the skipped ones listed."""
    from speecheq.inference.inputs import featurized

    with progress_bar("reading", len(items)) as advance:
        features, skipped = featurized(featurize, items, skip_bad, advance)
    if skipped:
        print_table(f"{len(skipped)} file(s) skipped", ["file", "why"], sorted(skipped.items()))
    return features


def embed_command(
    model: Annotated[
        str,
        typer.Argument(
            help="A model file (EXP/model.pt) or an export (.onnx, .ts); or a pretrained "
            "upstream (a checkpoint directory or a hub id, org/name[@revision])."
        ),
    ],
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Audio files, folders of them, a data directory or wav.scp, or a list of files."
        ),
    ],
    out_dir: Annotated[
        Path, typer.Argument(help="Where embeddings.ark/.scp, embeddings.npy and keys go.")
    ],
    layers: Annotated[
        str | None,
        typer.Option(help="With an upstream: the layers averaged (all, 0,6,12 or 6-12)."),
    ] = None,
    skip_bad: SkipBadOption = False,
    device: DeviceOption = "cpu",
    num_threads: ThreadsOption = None,
) -> None:
    """Write each utterance's embedding: the pooled shared representation the model's heads
    read (its emotion, gender, ... heads all start from it), for probing, clustering or a
    classifier of one's own.

    With a pretrained upstream instead of a model, the embedding is the mean over the
    utterance's frames of the mean of the chosen layers (--layers, default all).

    Kaldi's embeddings.ark/.scp (keyed by utterance id, or by file name), and embeddings.npy
    (one row per input, in the order of the file 'keys'). Features are computed and normalised
    as 'infer' does (per-speaker CMVN: the training speakers' pooled statistics).
    """
    from speecheq.features import SSLConfig
    from speecheq.features.ssl import SSLExtractor
    from speecheq.inference import Recognizer
    from speecheq.inference.inputs import audio_inputs
    from speecheq.inference.outputs import output_keys, write_embeddings

    set_threads(num_threads)
    items = audio_inputs(inputs)
    keys = output_keys(items, out_dir / "embeddings.scp")
    if Path(model).is_file() or Path(model).suffix in (".pt", ".onnx", ".ts"):
        if layers is not None:
            raise SpeechEQError("--layers is for an upstream; a model embeds what its heads read")
        recognizer = Recognizer.load(Path(model), device=device)
        features = _read(recognizer.features, items, skip_bad)
        found = recognizer.embed_many(features)
    else:
        config = SSLConfig.create(model, layers or "all", "float32")
        extractor = SSLExtractor(config, device)
        features = _read(lambda *audio: extractor.compute_batch([audio])[0], items, skip_bad)
        shape = (len(config.layers), config.layer_dim)
        found = ((name, f.reshape(len(f), *shape).mean(axis=(0, 1))) for name, f in features)
    embeddings = [(keys[name], vector) for name, vector in found]
    written = write_embeddings(embeddings, out_dir)
    dim = embeddings[0][1].shape[0]
    note(f"{len(embeddings)} embedding(s) of dimension {dim}: {', '.join(map(str, written))}")


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return " ".join(f"{key[0]}={item:.2f}" for key, item in value.items())
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def _timelines(
    recognizer: object,
    items: list[tuple[str, str]],
    options: object,
    out_dir: Path | None,
    plot: bool,
    skip_bad: bool,
) -> None:
    from speecheq.inference import Recognizer, TimelineOptions
    from speecheq.inference.outputs import kaldi_tables, output_keys, write_timeline
    from speecheq.inference.timeline import timelines_of

    assert isinstance(recognizer, Recognizer) and isinstance(options, TimelineOptions)
    if out_dir is None:
        raise SpeechEQError("--timeline writes its results to --out-dir; give one")
    output_keys(items, out_dir)
    timelines = []

    def skipped(spec: str, why: str) -> None:
        note(f"skipped {spec}: {why}")

    for result in timelines_of(recognizer, items, options, skip_bad, skipped):
        timelines.append(result)
        written = write_timeline(result, recognizer.identity, out_dir, plot)
        rows = [[f"{s.start:.2f}", f"{s.end:.2f}", s.emotion or "-",
                 f"{max(s.posteriors.values()):.2f}" if s.posteriors else "-"]
                for s in result.segments]  # fmt: skip
        print_table(
            f"{result.path}: {result.duration:.1f} s, {len(result.segments)} segment(s), "
            f"{result.real_time_factor:.0f}x real time",
            ["start", "end", "emotion", "posterior"],
            rows,
        )
        note(f"wrote {', '.join(str(path) for path in written)}")
    kaldi_tables(timelines, out_dir)


def export_command(
    model: Annotated[Path, typer.Argument(help="A model file (EXP/model.pt).")],
    out: Annotated[Path, typer.Argument(help="The exported model: NAME.onnx or NAME.ts.")],
    format: Annotated[str, typer.Option(help="onnx or torchscript.")] = "onnx",
) -> None:
    """Export a model for deployment: ONNX (run it with onnxruntime) or TorchScript.

    The export takes normalised features and their lengths, with dynamic batch and time axes,
    and carries the model's tasks, classes, feature options and CMVN, so 'speecheq infer' and
    the Python Recognizer run it as they run the model file.
    """
    from speecheq.inference.export import export_model

    path = export_model(model, out, format)
    note(f"wrote {path}")


def ensemble_command(
    out: Annotated[Path, typer.Argument(help="The ensemble's model file to write (NAME.pt).")],
    models: Annotated[
        list[Path], typer.Argument(help="The members' model files: one config, other seeds.")
    ],
) -> None:
    """Join model files of one config (trained with other seeds) into one model file.

    It runs every member on the same features and averages their outputs (class posteriors
    for a classification), so 'speecheq infer', 'export', 'predict' and the Recognizer run it
    as one model.
    """
    from speecheq.modelfile import save_ensemble

    note(f"wrote {save_ensemble(models, out)}: an ensemble of {len(models)} networks")
