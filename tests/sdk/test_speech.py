"""The official openai-python SDK on text-to-speech: `audio.speech.create` and
`audio.speech.with_streaming_response.create` on /v1 and on the /openai/v1 drop-in, against the mock's
mittwald-like TTS (always `audio/mpeg`). The client must get the mock's exact bytes and content type, the
provider must get the body with only `model` rewritten, and the call must be logged.
"""
import json
import time
import urllib.request

import openai
import pytest

from conftest import SHARED_KEY

MODEL = "Qwen3-TTS-12Hz-1.7B-CustomVoice"


@pytest.fixture(params=["/v1", "/openai/v1"])
def base_url(request, lanes):
    return lanes["base"] + request.param


def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key="client-key", _strict_response_validation=True, max_retries=0, timeout=30)


def mock_audio(text: str, voice: str) -> bytes:
    """The mock's deterministic audio (`switchyard_mock::speech_audio`), written again here."""
    out = bytearray(b"ID3\x04\x00\x00\x00\x00\x00\x00")
    for i, word in enumerate(f"voice={voice} input={text}".split(" ")):
        out += bytes([0xFF, 0xFB, 0x90, i % 256]) + word.encode()
    return bytes(out + b"\x00" * 16)


def last_upstream_request(mock_url: str) -> dict:
    with urllib.request.urlopen(mock_url + "/__requests/last", timeout=5) as r:
        return json.loads(r.read())


def speech_rows(base: str) -> list[dict]:
    with urllib.request.urlopen(base + "/api/logs?limit=1000", timeout=5) as r:
        return [row for row in json.loads(r.read())["logs"] if row["request_type"] == "speech"]


def test_speech_create_returns_the_exact_audio(base_url, lanes):
    before = len(speech_rows(lanes["base"]))
    text = "Guten Tag aus dem Rechenzentrum"
    r = client(base_url).audio.speech.create(model=f"mittwald-shared/{MODEL}", voice="Vivian", input=text, response_format="wav")
    assert r.content == mock_audio(text, "Vivian")
    assert r.response.headers["content-type"] == "audio/mpeg"
    assert r.response.headers["x-switchyard-provider"] == "mittwald-shared"
    seen = last_upstream_request(lanes["shared_mock"])
    assert seen["path"] == "/v1/audio/speech"
    assert seen["headers"]["authorization"] == f"Bearer {SHARED_KEY}"
    assert seen["json"] == {"model": MODEL, "voice": "Vivian", "input": text, "response_format": "wav"}
    deadline = time.time() + 5
    while len(speech_rows(lanes["base"])) <= before and time.time() < deadline:
        time.sleep(0.05)
    row = speech_rows(lanes["base"])[0]
    assert row["provider"] == "mittwald-shared"
    assert row["model"] == MODEL
    assert row["input_tokens"] == len(text)


def test_speech_with_streaming_response(base_url, lanes):
    text = "Hallo Welt"
    with client(base_url).audio.speech.with_streaming_response.create(model=f"mittwald-shared/{MODEL}", voice="Ryan", input=text) as r:
        assert r.headers["content-type"] == "audio/mpeg"
        chunks = list(r.iter_bytes())
    assert b"".join(chunks) == mock_audio(text, "Ryan")


def test_speech_errors_are_sdk_errors(base_url):
    with pytest.raises(openai.BadRequestError) as e:
        client(base_url).audio.speech.create(model=f"mittwald-shared/{MODEL}", voice="", input="x", extra_body={"voice": None})
    assert e.value.body["param"] == "voice"
    with pytest.raises(openai.InternalServerError):
        client(base_url).audio.speech.create(model=f"mittwald-shared/{MODEL}", voice="Ryan", input="x", response_format="aac")
