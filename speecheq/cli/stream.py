"""``speecheq stream`` (emotion segments as audio arrives) and ``speecheq serve`` (a local
HTTP and WebSocket server with a web page)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer

from speecheq.cli.options import DeviceOption, ThreadsOption, set_threads
from speecheq.console import note
from speecheq.errors import SpeechEQError

WindowOption = Annotated[float, typer.Option(help="Window length, seconds.")]
HopOption = Annotated[float, typer.Option(help="Window hop, seconds.")]
MinSegmentOption = Annotated[float, typer.Option(help="Shortest segment, seconds.")]
ThresholdOption = Annotated[float, typer.Option(help="Speech probability that starts speech.")]


def stream_command(
    model: Annotated[
        Path, typer.Argument(help="A model file (EXP/model.pt), or an export (.onnx, .ts).")
    ],
    source: Annotated[
        str,
        typer.Argument(
            help="'-': raw PCM from standard input; a file: raw PCM or WAV, read as it grows "
            "(it may still be written) until it has not grown for --idle seconds."
        ),
    ] = "-",
    rate: Annotated[int, typer.Option(help="Sample rate of raw PCM (a WAV file says its own).")] = (
        16000
    ),
    pcm_format: Annotated[
        str, typer.Option("--format", help="Raw PCM samples: s16le or f32le.")
    ] = "s16le",
    channels: Annotated[int, typer.Option(help="Interleaved channels of raw PCM.")] = 1,
    mic: Annotated[
        bool, typer.Option("--mic", help="Listen to the default microphone (the mic extra).")
    ] = False,
    idle: Annotated[
        float, typer.Option(help="A followed file has ended when it has not grown this long.")
    ] = 2.0,
    window: WindowOption = 3.0,
    hop: HopOption = 1.0,
    min_segment: MinSegmentOption = 1.0,
    vad_threshold: ThresholdOption = 0.5,
    device: DeviceOption = "cpu",
    num_threads: ThreadsOption = None,
) -> None:
    """Recognise emotion while the audio arrives: one JSON line per finished segment (start,
    end, emotion, posteriors, and its latency: seconds from its last sample arriving to the
    line), as `speecheq infer --timeline` would cut it.

    `cat call.raw | speecheq stream MODEL --rate 16000` reads a pipe; `speecheq stream MODEL
    call.wav` a file that is being written; `--mic` the microphone (until Ctrl-C).
    """
    from speecheq.inference import Recognizer, TimelineOptions
    from speecheq.inference.sources import (
        PcmLayout,
        follow_file,
        microphone_chunks,
        stdin_chunks,
    )
    from speecheq.inference.stream import EmotionStream

    set_threads(num_threads)
    layout = PcmLayout(rate, pcm_format, channels)
    options = TimelineOptions(window, hop, min_segment, vad_threshold)
    recognizer = Recognizer.load(model, device=device)
    if mic:
        chunks = microphone_chunks(layout)
    elif source == "-":
        chunks = stdin_chunks(layout)
    else:
        layout, chunks = follow_file(Path(source), layout, idle)
    stream = EmotionStream(recognizer, layout.rate, options)
    latencies: list[float] = []

    def emit(segments: list) -> None:
        for segment in segments:
            latencies.append(segment.latency)
            sys.stdout.write(json.dumps(segment.to_json()) + "\n")
        sys.stdout.flush()

    try:
        for chunk in chunks:
            emit(stream.push(chunk))
    except KeyboardInterrupt:
        pass
    emit(stream.close())
    if latencies:
        note(
            f"{len(latencies)} segments of {stream.received / layout.rate:.1f} s of audio; "
            f"latency median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"
        )
    elif not stream.received:
        raise SpeechEQError(f"{source if not mic else 'the microphone'}: no audio arrived")


def serve_command(
    model: Annotated[
        Path, typer.Argument(help="A model file (EXP/model.pt), or an export (.onnx, .ts).")
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (the loopback unless told otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_bytes: Annotated[
        int, typer.Option(help="Largest upload, and largest WebSocket message, in bytes.")
    ] = 50 * 1024 * 1024,
    workers: Annotated[int, typer.Option(help="Requests worked on at once.")] = 2,
    queue: Annotated[int, typer.Option(help="Requests waiting beyond those (then 503).")] = 16,
    streams: Annotated[int, typer.Option(help="WebSocket streams at once.")] = 4,
    window: WindowOption = 3.0,
    hop: HopOption = 1.0,
    min_segment: MinSegmentOption = 1.0,
    vad_threshold: ThresholdOption = 0.5,
    device: DeviceOption = "cpu",
    num_threads: ThreadsOption = None,
) -> None:
    """Serve a model over HTTP and WebSocket, with a web page at / (the serve extra).

    POST /v1/recognize (an audio file -> infer's JSON), POST /v1/timeline (a recording -> its
    segments), WS /v1/stream?rate=16000&format=s16le (PCM in, segments out, as `speecheq
    stream`), GET /v1/model, GET /healthz.
    """
    from speecheq.inference import Recognizer, TimelineOptions

    try:
        import uvicorn

        from speecheq.serve.app import ServeLimits, create_app
    except ImportError as err:
        raise SpeechEQError(
            f"speecheq serve needs FastAPI and uvicorn: pip install 'speecheq[serve]' ({err})"
        ) from None
    set_threads(num_threads)
    options = TimelineOptions(window, hop, min_segment, vad_threshold)
    limits = ServeLimits(max_bytes, workers, queue, streams, options)
    app = create_app(Recognizer.load(model, device=device), limits)
    note(f"serving {model} on http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning", ws_max_size=max_bytes)
