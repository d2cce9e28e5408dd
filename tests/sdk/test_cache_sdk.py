"""The response cache seen by the official openai-python SDK in strict mode: a cached answer and a
cached stream replayed from the cache parse exactly like the originals, and the upstream is asked once.
"""
import json
import time
import urllib.request
import uuid

import openai
import pytest


def _call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def chat_calls(lanes) -> int:
    with urllib.request.urlopen(lanes["shared_mock"] + "/__calls", timeout=5) as r:
        return json.loads(r.read())["chat"]


@pytest.fixture
def cached_client(lanes):
    status, body = _call(
        "POST",
        lanes["base"] + "/api/plugins",
        {"name": "semantic_cache", "enabled": True, "config": {"dimension": 1, "ttl": "5m"}},
    )
    assert status == 201, body
    client = openai.OpenAI(
        base_url=lanes["base"] + "/v1",
        api_key="dummy",
        _strict_response_validation=True,
        max_retries=0,
        timeout=30,
        default_headers={"x-bf-cache-key": f"sdk-{uuid.uuid4()}"},
    )
    yield client
    _call("DELETE", lanes["base"] + "/api/plugins/semantic_cache")


def test_a_cached_answer_parses_like_the_original(cached_client, lanes):
    msg = [{"role": "user", "content": f"cache me {uuid.uuid4()}"}]
    before = chat_calls(lanes)
    first = cached_client.chat.completions.create(model="mittwald-shared/gpt-oss-120b", messages=msg)
    raw = cached_client.chat.completions.with_raw_response.create(model="mittwald-shared/gpt-oss-120b", messages=msg)
    assert raw.headers["x-switchyard-cache"] == "hit"
    second = raw.parse()
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.id == first.id
    assert second.model_extra["extra_fields"]["cache_debug"]["cache_hit"] is True
    assert chat_calls(lanes) == before + 1


def test_a_cached_stream_is_replayed_and_parses(cached_client, lanes):
    msg = [{"role": "user", "content": f"stream me {uuid.uuid4()} please"}]
    before = chat_calls(lanes)

    def run():
        chunks = list(
            cached_client.chat.completions.create(
                model="mittwald-shared/gpt-oss-120b",
                messages=msg,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = [c.usage for c in chunks if c.usage is not None]
        return chunks, text, usage

    first, text1, usage1 = run()
    # The stream is stored once it has ended; the write is not on the client's path.
    for _ in range(50):
        status, stats = _call("GET", lanes["base"] + "/api/cache/stats")
        if stats.get("entries"):
            break
        time.sleep(0.05)
    second, text2, usage2 = run()
    assert text1 and text2 == text1
    assert len(second) == len(first)
    assert usage2 == usage1 and len(usage2) == 1
    marked = [c for c in second if (c.model_extra or {}).get("extra_fields")]
    assert len(marked) == 1
    assert marked[0].model_extra["extra_fields"]["cache_debug"]["cache_hit"] is True
    assert chat_calls(lanes) == before + 1
