#!/usr/bin/env python3
"""Measurement half of bench/soak.sh (stdlib only): a few minutes of normal and hostile traffic mixed
against a running switchyard, sampling its RSS and open file descriptors from /proc.

soak.sh starts the gateway, the well-behaved mock and the hostile mock (`switchyard-mock --hostile`)
and hands over their ports and the gateway's PID. Workers, each in its own thread, for the whole run:

  normal     chat completions, JSON and SSE, through a well-behaved upstream (must all be 200)
  upstream   the hostile upstream's cases in turn: huge answers, an endless event, a never-ending
             stream, the key echoed, 1xx/3xx, a connection closed mid-head (each must be a clear error)
  silent     batches of sockets that never send a byte (the gateway must close them)
  fields     a 1 MB model (400), a 1 MB header (431 or closed), a 1 MB user-agent
  guessing   wrong admin passwords (401 until locked out, then 429)
  health     GET /health on a new connection every 200 ms (must answer within 5 s)

Every 5 s the gateway's VmRSS and /proc/<pid>/fd count are sampled. The summary compares the first
and the last minute. Everything it talks to is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

HOST = "127.0.0.1"
HOSTILE_MODELS = ["huge-chunked", "huge-length", "endless", "flood", "echo", "err403", "s101", "s307", "reset"]
EXPECTED = {  # what a hostile case must end in: a status, and for streams an error event
    "huge-chunked": 502, "huge-length": 502, "s101": 502, "s307": 502, "reset": 502,
    "echo": 200, "err403": 403, "endless": 200, "flood": 200,
}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def ok(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def fail(self, kind: str, what: str) -> None:
        with self.lock:
            self.counts[kind] += 1
            self.bad[kind] += 1
            self.examples.setdefault(kind, what[:300])

    def check(self, kind: str, good: bool, what: str) -> None:
        if good:
            self.ok(kind)
        else:
            self.fail(kind, what)


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def chat(model: str, stream: bool = False, **extra: object) -> bytes:
    return json.dumps({"model": model, "stream": stream,
                       "messages": [{"role": "user", "content": "Hello there"}], **extra}).encode()


JSON = {"content-type": "application/json"}


def normal(port: int, stats: Stats, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        stream = i % 2 == 1
        try:
            status, body = request(port, "POST", "/v1/chat/completions", chat("m/echo-model", stream), JSON)
            good = status == 200 and (not stream or b"[DONE]" in body)
            stats.check("normal", good, f"{status} {body[:200]!r}")
        except OSError as e:
            stats.fail("normal", repr(e))
        i += 1


def upstream(port: int, stats: Stats, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        model = HOSTILE_MODELS[i % len(HOSTILE_MODELS)]
        stream = model in ("endless", "flood")
        kind = f"upstream:{model}"
        try:
            status, body = request(port, "POST", "/v1/chat/completions", chat(f"hostile/{model}", stream), JSON, 60)
            good = status == EXPECTED[model]
            if stream:
                last = body.strip().splitlines()[-1] if body.strip() else b""
                good = good and b'"error"' in last and b"[DONE]" not in body
            stats.check(kind, good, f"{status} {body[-300:]!r}")
        except OSError as e:
            stats.fail(kind, repr(e))
        i += 1


def silent(port: int, stats: Stats, stop: threading.Event, batch: int, deadline: float) -> None:
    while not stop.is_set():
        socks = []
        for _ in range(batch):
            try:
                socks.append(socket.create_connection((HOST, port), timeout=5))
            except OSError as e:
                stats.fail("silent", repr(e))
        for s in socks:
            s.settimeout(deadline + 10)
            try:
                closed = s.recv(1) == b""
                stats.check("silent", closed, "data on a silent socket")
            except OSError as e:
                stats.fail("silent", f"not closed by the gateway: {e!r}")
            finally:
                s.close()


def fields(port: int, stats: Stats, stop: threading.Event) -> None:
    mb = "m" * (1 << 20)
    while not stop.is_set():
        try:
            status, _ = request(port, "POST", "/v1/chat/completions", chat(mb), JSON)
            stats.check("fields", status == 400, f"1 MB model: {status}")
        except OSError as e:
            stats.fail("fields", repr(e))
        for name in ("x-padding", "user-agent"):
            try:
                status, _ = request(port, "GET", "/health", headers={name: mb})
                stats.check("fields", status == 431, f"1 MB {name}: {status}")
            except OSError:
                stats.ok("fields")  # closed by the HTTP layer: also a refusal
        stop.wait(0.5)


def guessing(port: int, stats: Stats, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        body = json.dumps({"username": "admin", "password": f"guess-{i}"}).encode()
        try:
            status, _ = request(port, "POST", "/api/auth/login", body, JSON)
            stats.check(f"guessing:{status}", status in (401, 429), f"{status}")
        except OSError as e:
            stats.fail("guessing", repr(e))
        i += 1
        stop.wait(0.05)


def health(port: int, stats: Stats, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            status, _ = request(port, "GET", "/health", timeout=5)
            took = time.monotonic() - started
            stats.check("health", status == 200, f"{status}")
            with stats.lock:
                stats.examples["health_max_s"] = f"{max(took, float(stats.examples.get('health_max_s', 0))):.3f}"
        except OSError as e:
            stats.fail("health", repr(e))
        stop.wait(0.2)


def proc_sample(pid: int) -> tuple[int, int]:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def configure(port: int, token: str, mock: int, hostile: int, key: str) -> None:
    auth = {**JSON, "authorization": f"Bearer {token}"}
    for name, base, value in (("m", mock, "sk-soak-normal"), ("hostile", hostile, key)):
        body = json.dumps({"provider": name,
                           "network_config": {"base_url": f"http://{HOST}:{base}", "max_retries": 0},
                           "circuit_breaker": {"failure_threshold": 1000},
                           "custom_provider_config": {"base_provider_type": "openai"},
                           "keys": [{"name": f"{name}-key", "value": value, "models": ["*"]}]}).encode()
        status, text = request(port, "POST", "/api/providers", body, auth)
        if status != 200:
            sys.exit(f"configuring provider {name}: {status} {text[:300]!r}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--mock-port", type=int, required=True)
    ap.add_argument("--hostile-port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--normal-workers", type=int, default=4)
    ap.add_argument("--silent-batch", type=int, default=100)
    ap.add_argument("--head-deadline", type=float, default=10)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    configure(args.port, args.token, args.mock_port, args.hostile_port, args.key)
    stats, stop = Stats(), threading.Event()
    workers = [threading.Thread(target=normal, args=(args.port, stats, stop)) for _ in range(args.normal_workers)]
    workers += [
        threading.Thread(target=upstream, args=(args.port, stats, stop)),
        threading.Thread(target=silent, args=(args.port, stats, stop, args.silent_batch, args.head_deadline)),
        threading.Thread(target=fields, args=(args.port, stats, stop)),
        threading.Thread(target=guessing, args=(args.port, stats, stop)),
        threading.Thread(target=health, args=(args.port, stats, stop)),
    ]
    samples: list[tuple[float, int, int]] = []
    start = time.monotonic()
    samples.append((0.0, *proc_sample(args.pid)))
    for w in workers:
        w.start()
    while (elapsed := time.monotonic() - start) < args.seconds:
        time.sleep(min(5, args.seconds - elapsed))
        samples.append((time.monotonic() - start, *proc_sample(args.pid)))
    stop.set()
    for w in workers:
        w.join(timeout=120)
    time.sleep(args.head_deadline + 2)  # let the last silent sockets and streams be closed
    samples.append((time.monotonic() - start, *proc_sample(args.pid)))

    with (args.out / "samples.csv").open("w") as f:
        f.write("seconds,rss_kb,fds\n")
        f.writelines(f"{t:.1f},{r},{n}\n" for t, r, n in samples)
    third = args.seconds / 3
    during = samples[1:-1]

    def median_mib(lo: float, hi: float) -> float:
        rss = [r for t, r, _ in during if lo < t <= hi] or [during[-1][1]]
        return statistics.median(rss) / 1024

    lines = [
        f"soak: {args.seconds} s, {args.normal_workers} normal workers, hostile upstream and clients mixed in",
        "",
        "| measure | value |",
        "|---|---|",
        f"| RSS at start | {samples[0][1] / 1024:.1f} MiB |",
        f"| RSS median, first third (warm-up) | {median_mib(0, third):.1f} MiB |",
        f"| RSS median, second third | {median_mib(third, 2 * third):.1f} MiB |",
        f"| RSS median, last third | {median_mib(2 * third, args.seconds + 1):.1f} MiB |",
        f"| RSS max | {max(r for _, r, _ in samples) / 1024:.1f} MiB |",
        f"| open fds at start / max / after the run | {samples[0][2]} / {max(n for _, _, n in samples)} / {samples[-1][2]} |",
        f"| /health slowest | {stats.examples.get('health_max_s', '?')} s |",
        "",
        "| traffic | requests | unexpected |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {stats.counts[k]} | {stats.bad[k]} |" for k in sorted(stats.counts)]
    problems = {k: v for k, v in stats.examples.items() if k != "health_max_s"}
    if problems:
        lines += ["", "first unexpected answer per kind:"] + [f"- {k}: {v}" for k, v in sorted(problems.items())]
    summary = "\n".join(lines)
    (args.out / "summary.md").write_text(summary + "\n")
    print(summary)
    sys.exit(1 if stats.bad else 0)


if __name__ == "__main__":
    main()
