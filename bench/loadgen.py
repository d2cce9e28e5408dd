#!/usr/bin/env python3
"""Load shapes wrk cannot make (stdlib only, loopback only).

  loadgen.py idle    --port P --conns 2000 --pid PID [--body JSON] [--hold S]
      opens CONNS keep-alive connections, sends one request on each and reads the whole answer, keeps
      them all open (idle) for HOLD seconds, and prints one JSON line with the server's VmRSS before
      and while they are held (read from /proc/PID/status).
  loadgen.py streams --port P --conns 512 [--body JSON] [--stall-ms 1000]
      starts CONNS streaming requests at once and reads every stream to its end; prints one JSON line
      with how many completed (ended with `data: [DONE]`), time to first token (first event with
      content) p50/p99/max, the longest gap between two events, and how many streams had a gap over
      STALL_MS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

HOST = "127.0.0.1"
PATH = "/v1/chat/completions"


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def request_bytes(port: int, body: str, headers: dict[str, str]) -> bytes:
    raw = body.encode()
    head = [f"POST {PATH} HTTP/1.1", f"Host: {HOST}:{port}", "Content-Type: application/json",
            f"Content-Length: {len(raw)}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + raw


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed before the status line")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return status, headers
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()


async def body_chunks(reader: asyncio.StreamReader, headers: dict[str, str]):
    """Yields the body's pieces as they arrive (chunked or Content-Length)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                return
            data = await reader.readexactly(size)
            await reader.readline()
            yield data
    else:
        n = int(headers.get("content-length", "0"))
        if n:
            yield await reader.readexactly(n)


async def idle(args: argparse.Namespace) -> dict:
    resource.setrlimit(resource.RLIMIT_NOFILE, (args.conns + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    req = request_bytes(args.port, args.body, dict(h.split(": ", 1) for h in args.header))
    before = rss_kb(args.pid)
    conns: list[asyncio.StreamWriter] = []
    errors = 0
    sem = asyncio.Semaphore(64)  # open them in waves, as clients arriving; all stay open

    async def one() -> None:
        nonlocal errors
        async with sem:
            try:
                reader, writer = await asyncio.open_connection(HOST, args.port)
                writer.write(req)
                status, headers = await read_head(reader)
                async for _ in body_chunks(reader, headers):
                    pass
                if status != 200:
                    errors += 1
                conns.append(writer)
            except (OSError, ConnectionError, ValueError, asyncio.IncompleteReadError):
                errors += 1

    await asyncio.gather(*(one() for _ in range(args.conns)))
    await asyncio.sleep(args.hold)
    held = rss_kb(args.pid)
    for w in conns:
        w.close()
    return {"conns": len(conns), "errors": errors, "rss_before_kb": before, "rss_held_kb": held,
            "added_kb": held - before}


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def streams(args: argparse.Namespace) -> dict:
    resource.setrlimit(resource.RLIMIT_NOFILE, (args.conns + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    req = request_bytes(args.port, args.body, dict(h.split(": ", 1) for h in args.header))
    ttft: list[float] = []
    gaps: list[float] = []
    done = 0
    errors = 0

    async def one() -> None:
        nonlocal done, errors
        t0 = time.perf_counter()
        first = None
        last = t0
        max_gap = 0.0
        try:
            reader, writer = await asyncio.open_connection(HOST, args.port)
            writer.write(req)
            status, headers = await read_head(reader)
            tail = b""
            async for data in body_chunks(reader, headers):
                now = time.perf_counter()
                max_gap = max(max_gap, now - last)
                last = now
                if first is None and b'"content":"' in data and b'"content":""' not in data:
                    first = now - t0
                tail = (tail + data)[-64:]
            writer.close()
            if status == 200 and b"data: [DONE]" in tail:
                done += 1
            else:
                errors += 1
        except (OSError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            errors += 1
        if first is not None:
            ttft.append(first * 1e6)
        gaps.append(max_gap * 1e3)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(args.conns)))
    return {
        "streams": args.conns, "completed": done, "errors": errors,
        "wall_s": round(time.perf_counter() - t0, 3),
        "ttft_p50_us": round(pct(ttft, 50)), "ttft_p99_us": round(pct(ttft, 99)),
        "ttft_max_us": round(max(ttft, default=0)),
        "max_gap_ms": round(max(gaps, default=0), 1),
        "stalled": sum(1 for g in gaps if g > args.stall_ms),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["idle", "streams"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=512)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--hold", type=float, default=2.0)
    p.add_argument("--stall-ms", type=float, default=1000.0)
    p.add_argument("--body", default='{"model":"echo","messages":[{"role":"user","content":"Hello there, how are you"}],'
                                     '"max_tokens":16}')
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    args = p.parse_args()
    result = asyncio.run(idle(args) if args.mode == "idle" else streams(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
