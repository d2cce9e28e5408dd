"""Shared set-up for the MCP suites: MCP upstreams built with the official SDK (mcp_upstream.py) on
loopback ports, the gateway started with a config.json that registers them, and an SDK client session
to the gateway's /mcp with a chosen credential header."""
import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("SWITCHYARD_BIN_DIR", ROOT / "target" / "debug"))
UPSTREAM = str(pathlib.Path(__file__).resolve().parent / "mcp_upstream.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, headers=None) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def start_upstream(name: str, transport: str, port: int, calls: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, UPSTREAM, name, transport, str(port), calls],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"MCP upstream {name} did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_gateway(
    config: dict, app_dir: str | None = None, env: dict | None = None, log=None, level: str = "warn"
) -> tuple[subprocess.Popen, str, str]:
    """The gateway on a free port; `env` adds variables, `log` (an open file) takes its output."""
    app_dir = app_dir or tempfile.mkdtemp(prefix="switchyard-mcp-")
    path = pathlib.Path(app_dir) / "config.json"
    path.write_text(json.dumps(config))
    port = free_port()
    gw = subprocess.Popen(
        [str(BIN_DIR / "switchyard"), "--port", str(port), "--app-dir", app_dir, "--log-level", level],
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while True:
        try:
            http("GET", base + "/health")
            return gw, base, app_dir
        except OSError:
            if time.time() > deadline or gw.poll() is not None:
                raise RuntimeError("gateway did not become healthy")
            time.sleep(0.05)


def clients(base: str) -> dict[str, dict]:
    status, page = http("GET", base + "/api/mcp/clients")
    assert status == 200, page
    return {c["config"]["name"]: c for c in page["clients"]}


def wait_state(base: str, name: str, state: str, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while True:
        c = clients(base).get(name)
        if c and c["state"] == state:
            return c
        if time.time() > deadline:
            raise AssertionError(f"{name} not {state} after {timeout}s: {c}")
        time.sleep(0.1)


@contextlib.asynccontextmanager
async def session(url: str, headers: dict | None = None):
    """An initialized official-SDK client session to a streamable HTTP MCP endpoint."""
    async with httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30, read=60)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


def seen(calls: str) -> list[str]:
    try:
        return pathlib.Path(calls).read_text().splitlines()
    except FileNotFoundError:
        return []
