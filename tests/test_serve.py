"""``speecheq serve``: the HTTP API and the WebSocket stream through real clients against a
running server, bad requests, and the web page in headless Chromium."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from speecheq import Recognizer
from speecheq.inference import TimelineOptions, timeline_of
from speecheq.serve.app import ServeLimits, create_app
from tests.conftest import CASIA_HELD_OUT
from tests.synthetic import RATE, one_thread  # noqa: F401
from tests.test_inference import long_recording
from tests.test_stream import EMOTIONS, streamed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MAX_BYTES = 400_000
"""The test server's body limit: a 10 s upload (320 kB) passes, 20 s does not; a stream of
any length passes."""


@contextlib.contextmanager
def running(recognizer: Recognizer, limits: ServeLimits) -> Iterator[str]:
    """A server of ``recognizer`` on a free loopback port, in a thread; yields its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(recognizer, limits), log_level="warning", ws_max_size=MAX_BYTES)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
        assert thread.is_alive(), "the server did not start"
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server(audio_model: Path) -> Iterator[str]:
    recognizer = Recognizer.load(audio_model / "exp" / "model.pt")
    limits = ServeLimits(max_bytes=MAX_BYTES, timeline=TimelineOptions(min_segment=0.5))
    with running(recognizer, limits) as url:
        yield url


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_the_api_answers_as_the_python_api_does(server: str, audio_model: Path) -> None:
    wav = next((audio_model / "wav").glob("*.wav"))
    recognizer = Recognizer.load(audio_model / "exp" / "model.pt")
    expected = recognizer.predict_file(wav)
    with httpx.Client(base_url=server, timeout=60) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        model = client.get("/v1/model").json()
        assert model["model"] == "model.pt" and model["classes"] == ["neutral", "happy", "angry",
                                                                     "sad"]  # fmt: skip
        assert model["sha256"] == recognizer.identity["sha256"]
        answer = client.post("/v1/recognize", content=wav.read_bytes()).json()
        assert answer["emotion"] == expected.emotion
        assert answer["posteriors"] == pytest.approx(expected.posteriors, abs=1e-5)
        page = client.get("/")
        assert page.status_code == 200 and "<canvas" in page.text


def test_bad_requests_get_a_4xx_with_one_sentence_and_the_server_goes_on(
    server: str, audio_model: Path
) -> None:
    wav = next((audio_model / "wav").glob("*.wav")).read_bytes()
    long = wav_bytes(np.zeros(20 * RATE, np.float32))
    cases = {
        "not audio": (b"speecheq is not audio", 400, "cannot decode the audio"),
        "empty": (b"", 400, "no audio"),
        "truncated": (long[:30000], 400, "is truncated"),
        "oversized": (long, 413, f"over the limit of {MAX_BYTES} bytes"),
    }
    ws = server.replace("http", "ws") + "/v1/stream"
    with httpx.Client(base_url=server, timeout=60) as client:
        for name, (body, status, message) in cases.items():
            for path in ("/v1/recognize", "/v1/timeline"):
                answer = client.post(path, content=body)
                assert answer.status_code == status, (name, path, answer.text)
                assert message in answer.json()["error"], (name, answer.json())
        for query, reason in {
            "?rate=0": "--rate must be at least 1000",
            "?format=mp3": "--format must be one of",
            "?rate=fast": "invalid literal",
        }.items():
            with connect(ws + query) as stream, pytest.raises(ConnectionClosed) as closed:
                stream.recv(timeout=30)
            assert closed.value.rcvd.code == 1008 and reason in closed.value.rcvd.reason
        with connect(ws) as stream:  # text other than 'end'
            stream.send("hello")
            with pytest.raises(ConnectionClosed) as closed:
                stream.recv(timeout=30)
            assert closed.value.rcvd.code == 1008
        with connect(ws) as stream:  # a client that goes away mid-stream
            stream.send(np.zeros(RATE, "<i2").tobytes())
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/recognize", content=wav).status_code == 200


@pytest.mark.corpora
def test_a_websocket_stream_gives_the_segments_of_a_stream_in_python(
    server: str, audio_model: Path, tmp_path: Path
) -> None:
    long_recording(tmp_path / "call.wav", CASIA_HELD_OUT, EMOTIONS[:4], first=226)
    pcm, _ = soundfile.read(tmp_path / "call.wav", dtype="int16")
    recognizer = Recognizer.load(audio_model / "exp" / "model.pt")
    expected = streamed(recognizer, pcm / 32768.0, TimelineOptions(min_segment=0.5))
    events = []
    with connect(server.replace("http", "ws") + f"/v1/stream?rate={RATE}&format=s16le") as ws:
        for first in range(0, len(pcm), 1601):  # odd sizes: frames split across messages
            ws.send(pcm[first : first + 1601].tobytes())
        ws.send("end")
        with contextlib.suppress(ConnectionClosed):
            while True:
                events.append(json.loads(ws.recv(timeout=60)))
    assert events[-1] == {"type": "done", "seconds": round(len(pcm) / RATE, 3)}
    segments = [event for event in events if event["type"] == "segment"]
    assert [(s["start"], s["end"], s["emotion"]) for s in segments] == [
        (round(e.segment.start, 3), round(e.segment.end, 3), e.segment.emotion) for e in expected
    ]
    assert expected, "the recording's speech was found"


@pytest.mark.corpora
@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")
def test_the_page_uploads_a_recording_and_draws_its_segments(
    casia_model: Path, tmp_path: Path
) -> None:
    """Headless Chromium opens the page, uploads a CASIA recording and shows its timeline:
    the canvas and the table hold the segments the API returns (a screenshot is kept). Then
    the same recording plays as the browser's microphone (Chromium's fake capture device):
    its segments come over the WebSocket and are drawn as they come."""
    from playwright.sync_api import sync_playwright

    long_recording(tmp_path / "call.wav", CASIA_HELD_OUT, EMOTIONS[:6], first=226)
    recognizer = Recognizer.load(casia_model / "exp" / "model.pt")
    options = TimelineOptions(min_segment=0.5)
    expected = timeline_of(recognizer, tmp_path / "call.wav", options).segments
    with running(recognizer, ServeLimits(timeline=options)) as url, sync_playwright() as play:
        browser = play.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={tmp_path / 'call.wav'}"],
        )  # fmt: skip
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('legend').children.length > 0")
        page.set_input_files("#file", str(tmp_path / "call.wav"))
        page.click("#upload")
        page.wait_for_function("document.getElementById('timeline').dataset.segments !== '0'")
        drawn = int(page.get_attribute("#timeline", "data-segments") or 0)
        rows = page.locator("#segments tr").all_inner_texts()
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        painted = page.evaluate(
            "() => { const c = document.getElementById('timeline');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"
        )
        page.click("#record")
        page.wait_for_function("document.getElementById('status').textContent === 'listening...'")
        page.wait_for_function(  # the first region's segments, as it ends
            "document.getElementById('timeline').dataset.segments !== '0'", timeout=60_000
        )
        live = page.locator("#segments tr").all_inner_texts()
        page.click("#record")  # stop: the stream ends, its last segments come, then 'done'
        page.wait_for_function(
            "/^\\d+ segments$/.test(document.getElementById('status').textContent)",
            timeout=60_000,
        )
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        browser.close()
    assert live and all(row.split("\t")[2] in recognizer.identity["classes"] for row in live)
    assert drawn == len(expected) == len(rows)
    assert [row.split("\t")[2] for row in rows] == [s.emotion for s in expected]
    assert painted > 0.2 * 960 * 240  # the posteriors fill much of the canvas
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"
    print(f"screenshot: {tmp_path / 'page.png'}")
