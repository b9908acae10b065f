#!/usr/bin/env python3
"""A bounded load test of ``speecheq serve`` on loopback, beside the same model called in
process (the peer: ``Recognizer.predict_file``, one utterance after another).

    tools/venv/bin/python tools/bench_serve.py MODEL --corpus-dir ../shared/corpora/casia \
        [--clients 16] [--requests 160] [--streams 4] [--stream-seconds 30]

1. ``--clients`` threads post CASIA utterances to ``/v1/recognize`` until ``--requests`` have
   been answered: throughput, p50/p95 latency, errors (must be 0).
2. ``--streams`` WebSocket streams at once, each sending a recording of CASIA utterances 1.5 s
   apart in real time (0.1 s chunks): segments, and their latency (the server's figure: from
   the segment's last sample arriving to its event) p50/p95.
3. The server's resident memory (``/proc``) after start, after the requests and after the
   streams, and its peak.
4. In process, ``--minutes`` of that recording (repeated) pushed through ``EmotionStream`` as
   fast as it goes, its resident memory every quarter of the way (flat, or it leaks), beside
   ``timeline_of`` of the same audio as a file (the peer): speed as x real time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000


def memory(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of a process, MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100)) if values else float("nan")


def recording(files: list[Path], seconds: float) -> np.ndarray:
    """CASIA utterances 1.5 s apart, about ``seconds`` long, as 16-bit PCM."""
    parts, total = [], 0.0
    for path in files:
        samples, _ = soundfile.read(path, dtype="int16")
        parts += [samples, np.zeros(int(1.5 * RATE), np.int16)]
        total += len(samples) / RATE + 1.5
        if total >= seconds:
            break
    return np.concatenate(parts)


def requests(url: str, files: list[Path], clients: int, count: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    bodies = [path.read_bytes() for path in files]

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            sent = index
            while sent < count:
                began = time.perf_counter()
                answer = http.post("/v1/recognize", content=bodies[sent % len(bodies)])
                with lock:
                    latencies.append(time.perf_counter() - began)
                    errors[0] += answer.status_code != 200
                sent += clients

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {
        "per_second": len(latencies) / wall,
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "errors": errors[0],
        "count": len(latencies),
    }


def streams(url: str, pcm: np.ndarray, count: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    segments = [0]
    lock = threading.Lock()
    chunk = RATE // 10

    def stream() -> None:
        try:
            with connect(url.replace("http", "ws") + f"/v1/stream?rate={RATE}") as ws:
                receiver = threading.Thread(target=receive, args=(ws,))
                receiver.start()
                began = time.perf_counter()
                for first in range(0, len(pcm), chunk):
                    ws.send(pcm[first : first + chunk].tobytes())
                    time.sleep(max(0.0, began + (first + chunk) / RATE - time.perf_counter()))
                ws.send("end")
                receiver.join()
        except Exception:  # counted, not raised: the load test reports errors
            with lock:
                errors[0] += 1

    def receive(ws) -> None:
        for message in ws:
            event = json.loads(message)
            if event["type"] == "segment":
                with lock:
                    latencies.append(event["latency"])
                    segments[0] += 1

    threads = [threading.Thread(target=stream) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "segments": segments[0],
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "errors": errors[0],
    }


def in_process(model: Path, files: list[Path], count: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from speecheq import Recognizer

    recognizer = Recognizer.load(model)
    recognizer.predict_file(files[0])  # warm up, as the server is
    latencies = []
    began = time.perf_counter()
    for index in range(count):
        start = time.perf_counter()
        recognizer.predict_file(files[index % len(files)])
        latencies.append(time.perf_counter() - start)
    wall = time.perf_counter() - began
    return {
        "per_second": count / wall,
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "errors": 0,
        "count": count,
    }


def long_stream(model: Path, pcm: np.ndarray, minutes: float) -> list[tuple[str, str]]:
    """Rows of the in-process comparison: the stream's memory as it goes, and both speeds."""
    import resource
    import tempfile

    sys.path.insert(0, str(ROOT))
    from speecheq import Recognizer, timeline_of
    from speecheq.inference.stream import EmotionStream

    recognizer = Recognizer.load(model)
    repeats = max(1, int(minutes * 60 * RATE / len(pcm)))
    seconds = repeats * len(pcm) / RATE
    stream = EmotionStream(recognizer, RATE)
    rows, segments = [], 0
    began = time.perf_counter()
    for index in range(repeats):
        for first in range(0, len(pcm), RATE):
            segments += len(stream.push(pcm[first : first + RATE]))
        if (index + 1) % max(1, repeats // 4) == 0:
            resident = memory(os.getpid())[0]
            at = (index + 1) * len(pcm) / RATE / 60
            rows.append((f"stream, after {at:.0f} min", f"{resident:.0f} MiB resident"))
    segments += len(stream.close())
    stream_speed = seconds / (time.perf_counter() - began)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.wav"
        with soundfile.SoundFile(path, "w", RATE, 1, "PCM_16") as out:
            for _ in range(repeats):
                out.write(pcm)
        timeline = timeline_of(recognizer, path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows += [
        (f"stream: {seconds / 60:.0f} min, {segments} segments", f"{stream_speed:.1f}x real time"),
        (
            f"timeline of the file (peer): {len(timeline.segments)} segments",
            f"{timeline.real_time_factor:.1f}x real time",
        ),
        ("peak of the process (both)", f"{peak:.0f} MiB"),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--corpus-dir", type=Path, default=ROOT.parent / "shared/corpora/casia")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--stream-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    files = sorted(args.corpus_dir.glob("*/*/2*.wav"))[::7]
    if not files:
        sys.exit(f"no CASIA utterances under {args.corpus_dir}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    speecheq = str(Path(sys.executable).parent / "speecheq")
    server = subprocess.Popen(
        [speecheq, "serve", str(args.model), "--port", str(port), "--workers", str(args.workers),
         "--queue", str(args.clients), "--num-threads", "1"],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        httpx.post(url + "/v1/recognize", content=files[0].read_bytes(), timeout=60)  # warm up
        started = memory(server.pid)
        served = requests(url, files, args.clients, args.requests)
        after_requests = memory(server.pid)
        streamed = streams(url, recording(files, args.stream_seconds), args.streams)
        after_streams = memory(server.pid)
    finally:
        server.terminate()
        server.wait()
    peer = in_process(args.model, files, min(args.requests, 40))
    hour = long_stream(args.model, recording(files, args.stream_seconds), args.minutes)
    print(f"model {args.model}; {len(files)} CASIA utterances; server --workers {args.workers}\n")
    print("| requests to /v1/recognize | count | per second | p50 s | p95 s | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in (
        (f"server, {args.clients} concurrent clients", served),
        ("in process, one after another (peer)", peer),
    ):
        print(
            f"| {name} | {row['count']} | {row['per_second']:.1f} | {row['p50']:.3f} | "
            f"{row['p95']:.3f} | {row['errors']} |"
        )
    print(f"\n| {args.streams} real-time streams of {args.stream_seconds:.0f} s | segments | "
          "latency p50 s | p95 s | errors |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| /v1/stream | {streamed['segments']} | {streamed['p50']:.3f} | "
        f"{streamed['p95']:.3f} | {streamed['errors']} |"
    )
    print("\n| server memory, MiB | resident | peak |")
    print("| --- | ---: | ---: |")
    for name, (resident, peak) in (
        ("after start", started),
        ("after the requests", after_requests),
        ("after the streams", after_streams),
    ):
        print(f"| {name} | {resident:.0f} | {peak:.0f} |")
    print("\n| in process | figure |")
    print("| --- | ---: |")
    for name, figure in hour:
        print(f"| {name} | {figure} |")


if __name__ == "__main__":
    main()
