"""The official openai-python SDK on the endpoints besides chat: embeddings (float and the SDK's default
base64), audio transcriptions with a real WAV file made here, legacy completions, the Responses API,
and the merged model list. Every call runs on /v1 and on the /openai/v1 drop-in, and the
exact request the provider received is read back from the mock (`GET /__requests/last`).
"""
import array
import io
import json
import math
import urllib.request
import wave

import openai
import pytest

from conftest import SHARED_KEY


@pytest.fixture(params=["/v1", "/openai/v1"])
def base_url(request, lanes):
    return lanes["base"] + request.param


def strict(base_url):
    return openai.OpenAI(base_url=base_url, api_key="client-key", _strict_response_validation=True, max_retries=0, timeout=30)


def lenient(base_url):
    # Strict validation checks a base64 embedding against the float-list type before decoding it
    # (testing-with-real-clients.md 1.3), so the SDK's default path is tested without it.
    return openai.OpenAI(base_url=base_url, api_key="client-key", max_retries=0, timeout=30)


def last_upstream_request(mock_url: str) -> dict:
    with urllib.request.urlopen(mock_url + "/__requests/last", timeout=5) as r:
        return json.loads(r.read())


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A real 16-bit mono PCM WAV: a 440 Hz tone."""
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(rate * seconds))))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def test_embeddings_float(base_url, lanes):
    r = strict(base_url).embeddings.create(
        model="mittwald-shared/Qwen3-Embedding-8B", input=["hello world", "second"], encoding_format="float"
    )
    assert len(r.data) == 2
    assert all(isinstance(x, float) for x in r.data[0].embedding)
    assert r.usage.prompt_tokens == 3
    seen = last_upstream_request(lanes["shared_mock"])
    assert seen["path"] == "/v1/embeddings"
    assert seen["headers"]["authorization"] == f"Bearer {SHARED_KEY}"
    assert seen["json"] == {"model": "Qwen3-Embedding-8B", "input": ["hello world", "second"], "encoding_format": "float"}


def test_embeddings_default_base64_decodes_to_the_same_vectors(base_url, lanes):
    floats = strict(base_url).embeddings.create(
        model="mittwald-shared/Qwen3-Embedding-8B", input="hello world", encoding_format="float"
    ).data[0].embedding
    # No encoding_format: the SDK asks for base64 and decodes it itself.
    r = lenient(base_url).embeddings.create(model="mittwald-shared/Qwen3-Embedding-8B", input="hello world")
    assert last_upstream_request(lanes["shared_mock"])["json"]["encoding_format"] == "base64"
    assert r.data[0].embedding == pytest.approx(floats, rel=1e-6)
    # An upstream that ignores encoding_format: the gateway encodes, the SDK decodes the same vector.
    r = lenient(base_url).embeddings.create(model="mittwald-shared/floatonly-embed", input="hello world")
    assert r.data[0].embedding == pytest.approx(floats, rel=1e-6)


@pytest.mark.parametrize("response_format", ["json", "verbose_json", "text"])
def test_transcription_of_a_real_wav(base_url, lanes, response_format):
    audio = tone_wav(1.5)
    r = strict(base_url).audio.transcriptions.create(
        model="mittwald-shared/whisper-large-v3-turbo",
        file=("tone.wav", audio, "audio/wav"),
        language="en",
        response_format=response_format,
    )
    expected = f"mock transcript of tone.wav ({len(audio)} bytes, en)"
    if response_format == "text":
        assert r == expected
    else:
        assert r.text == expected
    if response_format == "verbose_json":
        assert r.duration == 1.5
        assert r.language == "en"
    seen = last_upstream_request(lanes["shared_mock"])
    assert seen["path"] == "/v1/audio/transcriptions"
    assert seen["headers"]["authorization"] == f"Bearer {SHARED_KEY}"
    parts = {p["name"]: p for p in seen["parts"]}
    assert parts["model"]["value"] == "whisper-large-v3-turbo"
    assert parts["language"]["value"] == "en"
    assert parts["response_format"]["value"] == response_format
    assert parts["file"]["filename"] == "tone.wav"
    assert parts["file"]["size"] == len(audio)
    assert parts["file"]["head_hex"] == audio[:16].hex()


def test_transcription_errors_are_sdk_errors(base_url):
    with pytest.raises(openai.BadRequestError) as e:
        strict(base_url).audio.transcriptions.create(
            model="mittwald-shared/whisper-large-v3-turbo", file=("tone.wav", tone_wav(0.2), "audio/wav"), response_format="srt"
        )
    assert e.value.body["param"] == "response_format"


def test_legacy_completions(base_url):
    client = strict(base_url)
    r = client.completions.create(model="mittwald-shared/gpt-oss-120b", prompt="Say this")
    assert r.choices[0].text == "echo: Say this"
    # Stream chunks carry `finish_reason: null` until the last one (as OpenAI's do), which the SDK's
    # Completion type does not admit in strict mode.
    chunks = lenient(base_url).completions.create(model="mittwald-shared/gpt-oss-120b", prompt="a b", stream=True)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "echo: a b"


def test_responses_api(base_url, lanes):
    client = strict(base_url)
    r = client.responses.create(model="mittwald-shared/gpt-oss-120b", input="Hi there")
    assert r.output_text == "echo: Hi there"
    assert r.usage.input_tokens == 2
    assert last_upstream_request(lanes["shared_mock"])["json"]["model"] == "gpt-oss-120b"
    events = list(client.responses.create(model="mittwald-shared/gpt-oss-120b", input="Hi there", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "echo: Hi there"


def test_models_include_every_lane_within_allowlists(base_url):
    ids = [m.id for m in strict(base_url).models.list()]
    assert "mittwald-shared/Qwen3-Embedding-8B" in ids
    assert "openai/PREMIUM-MODEL" in ids
    assert "openai/Qwen3-Embedding-8B" not in ids  # the dedicated key serves PREMIUM-MODEL only
    assert "anthropic/claude-3-7-sonnet" in ids
