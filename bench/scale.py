"""Scale and memory scenarios of bench/harness.py that wrk cannot drive (loopback only); the load
comes from the Rust load generator bench/loadgen (`switchyard-loadgen`, path in BENCH_LOADGEN_BIN).

- streams: CONNS concurrent SSE streams at once, the upstream sending a chunk every 20 ms (mock model
  `drip-20`, 100 chunks); all must complete, none may stall; time to first token (TTFT) per target.
- idle: 2,000 keep-alive client connections, one request each, then held idle: RSS they add.
- soak: c=32 JSON for SECONDS with VmRSS sampled every few seconds: growth after the warm-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

# bench/run.sh builds it and sets BENCH_LOADGEN_BIN; the default is where cargo puts it.
_ROOT = Path(__file__).resolve().parent.parent
LOADGEN = os.environ.get("BENCH_LOADGEN_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR") or _ROOT / "target") / "release" / "switchyard-loadgen")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def _body(model: str, stream: bool, max_tokens: int = 16) -> str:
    return json.dumps({
        "model": model,
        "messages": [{"role": "user", "content": "Hello there, how are you"}],
        "max_tokens": max_tokens,
        "stream": stream,
    }, separators=(",", ":"))


def _loadgen(args: list[str], timeout: float, cpu: str = "") -> dict:
    """Runs the load generator (on CPU `cpu`, taskset syntax, like wrk; "" = unpinned). It gives up
    by itself after --timeout-s (100 s by default), before `timeout` here."""
    cmd = (["taskset", "-c", cpu] if cpu else []) + [LOADGEN, *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)[-300:]}
    if res.returncode != 0:
        return {"error": res.stderr.strip()[-300:]}
    if res.stderr.strip():
        print(f"  {res.stderr.strip()[-300:]}", file=sys.stderr, flush=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def streams(target, conns: int, cpu: str = "") -> dict:
    """`target` has .name, .port, .pid, .model (e.g. "echo" or "mock/echo")."""
    _reset_peak(target.pid)
    model = target.model.replace("echo", "drip-20")
    r = _loadgen(["streams", "--port", str(target.port), "--conns", str(conns), "--body", _body(model, True)], 120,
                 cpu)
    r["peak_rss_kb"] = _status_kb(target.pid, "VmHWM")
    return r


def idle(target, conns: int, cpu: str = "") -> dict:
    r = _loadgen(["idle", "--port", str(target.port), "--conns", str(conns), "--pid", str(target.pid),
                  "--body", _body(target.model, False, 4)], 120, cpu)
    return r


def soak(target, wrk_cmd: list[str], seconds: int, sample_every: float = 5.0) -> dict:
    """Runs `wrk_cmd` (already sized to `seconds`) and samples VmRSS; growth = last - first after warm-up
    (the first fifth of the run)."""
    proc = subprocess.Popen(wrk_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    while proc.poll() is None:
        samples.append((time.monotonic() - t0, _status_kb(target.pid, "VmRSS")))
        time.sleep(sample_every)
    out, _ = proc.communicate()
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    res = json.loads(line[len("BENCH_RESULT "):]) if line else {}
    warm = [kb for t, kb in samples if t >= seconds / 5] or [kb for _, kb in samples]
    errors = sum(v for k, v in res.items() if k.startswith("err_"))
    return {
        "seconds": seconds, "requests": res.get("requests", 0), "errors": errors,
        "rss_after_warmup_kb": warm[0] if warm else 0, "rss_end_kb": warm[-1] if warm else 0,
        "rss_max_kb": max(warm, default=0), "samples": samples,
    }


def render(results: dict[str, dict[str, dict]], labels: dict[str, str]) -> list[str]:
    """`results[kind][target_name]` -> Markdown lines."""
    lines: list[str] = []
    if "streams" in results:
        lines += ["", "Concurrent SSE streams (upstream: a chunk every 20 ms, 100 chunks), all started at once:", "",
                  "| target | completed | errors | TTFT p50 | TTFT p99 | TTFT max | longest gap | stalled (> 1 s) | peak RSS MB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in results["streams"].items():
            if "error" in r:
                lines.append(f"| {labels[name]} | failed: {r['error']} | | | | | | | |")
                continue
            lines.append(
                f"| {labels[name]} | {r['completed']}/{r['streams']} | {r['errors']} | {r['ttft_p50_us'] / 1000:.2f} ms | "
                f"{r['ttft_p99_us'] / 1000:.2f} ms | {r['ttft_max_us'] / 1000:.2f} ms | {r['max_gap_ms']:.0f} ms | "
                f"{r['stalled']} | {r['peak_rss_kb'] / 1024:.1f} |")
    if "idle" in results:
        lines += ["", "Idle keep-alive client connections (one request each, then held open):", "",
                  "| target | connections | errors | RSS before MB | RSS held MB | added MB |", "|---|---:|---:|---:|---:|---:|"]
        for name, r in results["idle"].items():
            if "error" in r:
                lines.append(f"| {labels[name]} | failed: {r['error']} | | | | |")
                continue
            lines.append(
                f"| {labels[name]} | {r['conns']} | {r['errors']} | {r['rss_before_kb'] / 1024:.1f} | "
                f"{r['rss_held_kb'] / 1024:.1f} | {r['added_kb'] / 1024:+.1f} |")
    if "soak" in results:
        lines += ["", "Soak (JSON, c=32): RSS after the warm-up (first fifth) and at the end:", "",
                  "| target | seconds | requests | errors | RSS after warm-up MB | RSS end MB | max MB | growth MB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in results["soak"].items():
            lines.append(
                f"| {labels[name]} | {r['seconds']} | {r['requests']} | {r['errors']} | {r['rss_after_warmup_kb'] / 1024:.1f} | "
                f"{r['rss_end_kb'] / 1024:.1f} | {r['rss_max_kb'] / 1024:.1f} | "
                f"{(r['rss_end_kb'] - r['rss_after_warmup_kb']) / 1024:+.1f} |")
    return lines


def section(bench, live: list, labels: dict[str, str]) -> str:
    """The scenarios wrk cannot drive, run after harness.py's rounds; Markdown."""
    args = bench.args
    results: dict[str, dict[str, dict]] = {}
    proxies = [t for t in live if t.name != "direct"]
    cpu = args.wrk_cpu  # the load generator runs where wrk does (with the mock), when pinned
    if args.streams > 0:
        print(f"scale: {args.streams} concurrent SSE streams", file=sys.stderr, flush=True)
        results["streams"] = {t.name: streams(t, args.streams, cpu) for t in live}
    if args.idle_conns > 0:
        print(f"scale: {args.idle_conns} idle keep-alive connections", file=sys.stderr, flush=True)
        results["idle"] = {t.name: idle(t, args.idle_conns, cpu) for t in proxies}
    if args.soak_seconds > 0:
        print(f"scale: {args.soak_seconds} s soak at c=32", file=sys.stderr, flush=True)
        results["soak"] = {
            t.name: soak(t, bench.wrk_cmd(t, False, 32, args.soak_seconds), args.soak_seconds)
            for t in proxies
            if t.name == "switchyard"
        }
    (bench.out / "scale.json").write_text(json.dumps(results, indent=2))
    lines = render(results, labels)
    s = results.get("streams", {})
    if "switchyard" in s and "direct" in s and "error" not in s["switchyard"]:
        sw, d = s["switchyard"], s["direct"]
        added = (sw["ttft_p99_us"] - d["ttft_p99_us"]) / 1000
        ok = sw["completed"] == sw["streams"] and sw["stalled"] == 0
        lines += ["", f"- {sw['streams']} streams: all complete and none stalls: {verdict(ok)}; added TTFT p99 vs "
                  f"direct {added:+.2f} ms — target ≤ 1 ms: {verdict(added <= 1)}"]
    i = results.get("idle", {}).get("switchyard")
    if i and "error" not in i:
        lines.append(f"- {i['conns']} idle connections add {i['added_kb'] / 1024:.1f} MB — target ≤ 10 MB: "
                     f"{verdict(i['added_kb'] <= 10 * 1024)}")
    k = results.get("soak", {}).get("switchyard")
    if k:
        grow = (k["rss_end_kb"] - k["rss_after_warmup_kb"]) / 1024
        lines.append(f"- soak: RSS {grow:+.1f} MB after warm-up over {k['seconds']} s (target: no growth)")
    return "\n".join(lines) + "\n"
