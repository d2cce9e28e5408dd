"""Starts the real gateway and the mock upstreams (as separate processes, on loopback ports) for the
official-SDK suite, and registers the seed's lanes through the management API exactly as the guide does.

Binaries come from SWITCHYARD_BIN_DIR (default: target/debug); scripts/test.sh builds them first.
"""
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("SWITCHYARD_BIN_DIR", ROOT / "target" / "debug"))
DEDICATED_KEY = "sk-dedicated-test-key-0001"
SHARED_KEY = "sk-shared-test-key-0002"
GATEWAY_RETRIES = 2
ANTHROPIC_KEY = "sk-ant-test-key-0003"
CLAUDE_MODELS = ["claude-3-7-sonnet", "claude-4-sonnet", "tool-claude", "overloaded-claude"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_mock(api_key: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [str(BIN_DIR / "switchyard-mock"), "--port", "0", "--api-key", api_key],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("switchyard-mock listening on "), line
    return proc, line.rsplit(" ", 1)[1] + "/v1"


def _call(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def lanes():
    """The gateway with two lanes: dedicated (`openai`, premium model only) and shared (`*`)."""
    procs = []
    dedicated, dedicated_url = _start_mock(DEDICATED_KEY)
    shared, shared_url = _start_mock(SHARED_KEY)
    anthropic, anthropic_url = _start_mock(ANTHROPIC_KEY)
    procs += [dedicated, shared, anthropic]
    port = _free_port()
    app_dir = tempfile.mkdtemp(prefix="switchyard-sdk-")
    gw = subprocess.Popen(
        [str(BIN_DIR / "switchyard"), "--port", str(port), "--app-dir", app_dir, "--log-level", "warn"],
    )
    procs.append(gw)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 15
        while True:
            try:
                _call("GET", base + "/health")
                break
            except OSError:
                if time.time() > deadline or gw.poll() is not None:
                    raise RuntimeError("gateway did not become healthy")
                time.sleep(0.05)
        _call("POST", base + "/api/providers", {"provider": "openai", "network_config": {"base_url": dedicated_url}})
        _call(
            "POST",
            base + "/api/providers/openai/keys",
            {"name": "mittwald-dedicated", "value": DEDICATED_KEY, "models": ["PREMIUM-MODEL"], "weight": 1.0},
        )
        _call(
            "POST",
            base + "/api/providers",
            {
                "provider": "mittwald-shared",
                # Short backoff keeps the suite fast; GATEWAY_RETRIES retries as by default. The error
                # cases hit the same key on purpose, so its circuit breaker must not eject it.
                "network_config": {
                    "base_url": shared_url,
                    "max_retries": GATEWAY_RETRIES,
                    "retry_backoff_initial": 20,
                    "retry_backoff_max": 50,
                },
                "custom_provider_config": {"base_provider_type": "openai"},
                "circuit_breaker": {"failure_threshold": 1000},
            },
        )
        _call(
            "POST",
            base + "/api/providers/mittwald-shared/keys",
            {"name": "mittwald-shared-key", "value": SHARED_KEY, "models": ["*"], "weight": 1.0},
        )
        # The guide's third lane, pointed at an Anthropic-speaking mock.
        _call(
            "POST",
            base + "/api/providers",
            {"provider": "anthropic", "network_config": {"base_url": anthropic_url, "max_retries": 0}},
        )
        _call(
            "POST",
            base + "/api/providers/anthropic/keys",
            {"name": "claude-key", "value": ANTHROPIC_KEY, "models": CLAUDE_MODELS, "weight": 1.0},
        )
        yield {"base": base, "dedicated_mock": dedicated_url.removesuffix("/v1"), "shared_mock": shared_url.removesuffix("/v1")}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
