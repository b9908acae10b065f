"""The HTTP and WebSocket server of ``speecheq serve``, on FastAPI (the ``serve`` extra).

- ``GET /``: a page that uploads a recording or records the browser's microphone and draws
  the emotion posteriors over time as they come;
- ``GET /healthz``; ``GET /v1/model``: the model's identity (its file's name, digest, tasks,
  classes, training data and config);
- ``POST /v1/recognize``: an audio file as the request body -> ``speecheq infer``'s JSON;
- ``POST /v1/timeline``: a long recording as the body -> its speech and segments, as
  ``speecheq infer --timeline`` writes them;
- ``WS /v1/stream?rate=16000&format=s16le&channels=1``: raw PCM in binary messages, the text
  message ``end`` when done; segment events out (``{"type": "segment", ...}``, as
  ``speecheq stream`` prints them), then ``{"type": "done"}``.

Bodies and messages are limited in size; work runs in threads, at most ``workers`` at a time
(more requests wait, up to ``queue`` of them; beyond that a 503); streams at most ``streams`` at
a time. No path is ever read from a request: uploads are decoded in memory or in a temporary
file of the server's own. Bad input gets a 4xx (or a WebSocket close code) with one sentence,
and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from speecheq.audio import audio_from_bytes
from speecheq.errors import SpeechEQError
from speecheq.inference import Recognizer, TimelineOptions, timeline_of
from speecheq.inference.outputs import timeline_json
from speecheq.inference.sources import PcmLayout
from speecheq.inference.stream import EmotionStream

T = TypeVar("T")

POLICY_VIOLATION = 1008
"""WebSocket close code for a request the server refuses (bad parameters, bad audio)."""
TRY_AGAIN_LATER = 1013
"""WebSocket close code when every stream slot is taken."""


@dataclass(frozen=True)
class ServeLimits:
    """What one server takes on at a time."""

    max_bytes: int = 50 * 1024 * 1024
    """Largest request body (an upload) and WebSocket message, in bytes (a stream as a whole
    has no limit: its memory stays flat)."""
    workers: int = 2
    """Requests worked on at once (each in a thread)."""
    queue: int = 16
    """Requests waiting for a worker; more get a 503."""
    streams: int = 4
    """WebSocket streams at once; more are closed with 1013 (try again later)."""
    timeline: TimelineOptions = field(default_factory=TimelineOptions)

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.workers, self.streams) < 1 or self.queue < 0:
            raise SpeechEQError(
                "--max-bytes, --workers and --streams must be positive, --queue not negative"
            )


class Refused(Exception):
    """A request the server answers with ``status`` and one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(recognizer: Recognizer, limits: ServeLimits | None = None) -> FastAPI:
    """The server's application for one loaded model."""
    limits = limits or ServeLimits()
    app = FastAPI(title="speecheq", docs_url=None, redoc_url=None)
    workers = asyncio.Semaphore(limits.workers)
    waiting = {"requests": 0, "streams": 0}
    identity = {**recognizer.identity, "model": Path(recognizer.identity["model"]).name}
    page = resources.files("speecheq.serve").joinpath("page.html").read_text(encoding="utf-8")

    async def work(job: Callable[[], T]) -> T:
        """``job`` in a thread, at most ``limits.workers`` at a time."""
        if waiting["requests"] >= limits.workers + limits.queue:
            raise Refused(503, "the server is busy; try again shortly")
        waiting["requests"] += 1
        try:
            async with workers:
                return await run_in_threadpool(job)
        finally:
            waiting["requests"] -= 1

    async def body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise Refused(413, f"the body is over the limit of {limits.max_bytes} bytes")
        data = bytearray()
        async for part in request.stream():
            data += part
            if len(data) > limits.max_bytes:
                raise Refused(413, f"the body is over the limit of {limits.max_bytes} bytes")
        if not data:
            raise Refused(400, "no audio: send an audio file as the request body")
        return bytes(data)

    @app.exception_handler(Refused)
    async def refused(_: Request, err: Refused) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(SpeechEQError)
    async def bad_input(_: Request, err: SpeechEQError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return identity

    @app.post("/v1/recognize")
    async def recognize(request: Request) -> dict[str, Any]:
        data = await body(request)

        def run() -> dict[str, Any]:
            samples, rate = audio_from_bytes(data, "the uploaded audio")
            prediction = recognizer.predict(samples, rate)
            return {"duration": round(len(samples) / rate, 3), **prediction.to_json()}

        return await work(run)

    @app.post("/v1/timeline")
    async def timeline(request: Request) -> dict[str, Any]:
        data = await body(request)

        def run() -> dict[str, Any]:
            audio_from_bytes(data, "the uploaded audio")  # refused before it is written
            with tempfile.NamedTemporaryFile(prefix="speecheq-upload-") as upload:
                upload.write(data)
                upload.flush()
                result = timeline_of(recognizer, upload.name, limits.timeline)
            return {"classes": result.classes, **timeline_json(result)}

        return await work(run)

    @app.websocket("/v1/stream")
    async def stream(socket: WebSocket) -> None:
        await socket.accept()
        if waiting["streams"] >= limits.streams:
            await socket.close(TRY_AGAIN_LATER, f"all {limits.streams} streams are taken")
            return
        waiting["streams"] += 1
        try:
            await _serve_stream(socket, recognizer, limits)
        except WebSocketDisconnect:
            pass  # the client went away: nothing to answer
        finally:
            waiting["streams"] -= 1

    return app


async def _serve_stream(socket: WebSocket, recognizer: Recognizer, limits: ServeLimits) -> None:
    """One WebSocket stream: PCM in, segment events out (see the module docstring)."""
    try:
        params = socket.query_params
        layout = PcmLayout(
            int(params.get("rate", "16000")),
            params.get("format", "s16le"),
            int(params.get("channels", "1")),
        )
        emotion = EmotionStream(recognizer, layout.rate, limits.timeline)
    except (SpeechEQError, ValueError) as err:
        await socket.close(POLICY_VIOLATION, _reason(err))
        return
    leftover = b""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            if message["text"].strip() != "end":
                await socket.close(POLICY_VIOLATION, "send PCM as binary messages, then 'end'")
                return
            segments = await run_in_threadpool(emotion.close)
            await _send(socket, segments)
            seconds = round(emotion.received / layout.rate, 3)
            await socket.send_text(json.dumps({"type": "done", "seconds": seconds}))
            await socket.close()
            return
        data = leftover + (message.get("bytes") or b"")
        usable = len(data) // layout.frame_bytes * layout.frame_bytes
        leftover = data[usable:]
        try:
            segments = await run_in_threadpool(emotion.push, layout.decode(data[:usable]))
        except SpeechEQError as err:
            await socket.close(POLICY_VIOLATION, _reason(err))
            return
        await _send(socket, segments)


async def _send(socket: WebSocket, segments: list) -> None:
    for segment in segments:
        await socket.send_text(json.dumps({"type": "segment", **segment.to_json()}))


def _reason(err: Exception) -> str:
    """A close reason (at most 123 bytes, as WebSocket allows)."""
    text = str(err).encode()[:123]
    return text.decode(errors="ignore")
