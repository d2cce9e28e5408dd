"""LiteLLM's key lifecycle as its users run it: management calls with the master key (as LiteLLM's docs
show them, with `requests`-style JSON bodies), inference through the official openai SDK with the keys
they hand out. The gateway runs with SWITCHYARD_MASTER_KEY, against one mock upstream.
"""
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import BIN_DIR, _free_port, _start_mock

MASTER = "sk-master-sdk-0123456789"
UPSTREAM = "sk-upstream-sdk-0123456789"
MODEL = "gpt-oss-120b"
MSG = [{"role": "user", "content": "Hello"}]


def _mgmt(base: str, method: str, path: str, body: dict | None = None, key: str = MASTER) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def litellm_gw():
    mock, mock_url = _start_mock(UPSTREAM)
    port = _free_port()
    app_dir = tempfile.mkdtemp(prefix="switchyard-litellm-")
    env = dict(os.environ, SWITCHYARD_MASTER_KEY=MASTER)
    gw = subprocess.Popen(
        [str(BIN_DIR / "switchyard"), "--port", str(port), "--app-dir", app_dir, "--log-level", "warn"], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 15
        while True:
            try:
                urllib.request.urlopen(base + "/health/liveliness", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or gw.poll() is not None:
                    raise RuntimeError("gateway did not start")
                time.sleep(0.05)
        for path, body in [
            (
                "/api/providers",
                {
                    "provider": "mittwald",
                    "network_config": {"base_url": mock_url, "max_retries": 0},
                    "custom_provider_config": {"base_provider_type": "openai"},
                },
            ),
            ("/api/providers/mittwald/keys", {"name": "k", "value": UPSTREAM, "models": ["*"], "weight": 1.0}),
            (
                "/api/governance/pricing-overrides",
                {
                    "provider": "mittwald",
                    "model": MODEL,
                    "input_cost_per_million_tokens": 1000,
                    "output_cost_per_million_tokens": 2000,
                },
            ),
        ]:
            assert _mgmt(base, "POST", path, body)[0] == 200
        yield base
    finally:
        for p in (gw, mock):
            p.terminate()
            p.wait(timeout=10)


def client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, _strict_response_validation=True)


def test_key_lifecycle_with_the_openai_sdk(litellm_gw):
    base = litellm_gw
    status, g = _mgmt(
        base,
        "POST",
        "/key/generate",
        {"models": [MODEL], "key_alias": "sdk-app", "metadata": {"team": "x"}, "rpm_limit": 100, "max_budget": 10},
    )
    assert status == 200, g
    key = g["key"]
    r = client(base, key).chat.completions.create(model=MODEL, messages=MSG)
    assert r.choices[0].message.content == "echo: Hello"
    # A model the key may not use.
    with pytest.raises(openai.PermissionDeniedError):
        client(base, key).chat.completions.create(model="other-model", messages=MSG)
    # Blocked, then unblocked.
    assert _mgmt(base, "POST", "/key/block", {"key": key})[1]["blocked"] is True
    with pytest.raises(openai.AuthenticationError):
        client(base, key).chat.completions.create(model=MODEL, messages=MSG)
    assert _mgmt(base, "POST", "/key/unblock", {"key": key})[1]["blocked"] is False
    client(base, key).chat.completions.create(model=MODEL, messages=MSG)
    # Rotation: the old key is refused at once, the new one works with the same alias.
    status, rotated = _mgmt(base, "POST", f"/key/{key}/regenerate", {})
    assert status == 200 and rotated["key_alias"] == "sdk-app", rotated
    with pytest.raises(openai.AuthenticationError):
        client(base, key).chat.completions.create(model=MODEL, messages=MSG)
    new_key = rotated["key"]
    client(base, new_key).chat.completions.create(model=MODEL, messages=MSG)
    # The key's info, read with the key itself.
    status, info = _mgmt(base, "GET", "/key/info", key=new_key)
    assert status == 200 and info["info"]["metadata"] == {"team": "x"}, info
    # Deleted: refused.
    assert _mgmt(base, "POST", "/key/delete", {"keys": [new_key]})[0] == 200
    with pytest.raises(openai.AuthenticationError):
        client(base, new_key).chat.completions.create(model=MODEL, messages=MSG)


def test_rpm_and_budget_refusals_with_the_openai_sdk(litellm_gw):
    base = litellm_gw
    _, g = _mgmt(base, "POST", "/key/generate", {"rpm_limit": 1})
    c = client(base, g["key"])
    c.chat.completions.create(model=MODEL, messages=MSG, max_tokens=3)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model=MODEL, messages=MSG, max_tokens=3)
    assert e.value.response.headers.get("retry-after")
    _, g = _mgmt(base, "POST", "/key/generate", {"max_budget": 0.0})
    with pytest.raises(openai.APIStatusError) as e:
        client(base, g["key"]).chat.completions.create(model=MODEL, messages=MSG, max_tokens=3)
    assert e.value.status_code == 402
    assert e.value.body["type"] == "budget_exceeded"
