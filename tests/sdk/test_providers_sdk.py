"""The official openai and anthropic SDKs (strict response validation) against Azure- and Bedrock-shaped
upstreams: the mock binary serves Azure deployment routes (api-key, api-version) and Bedrock Converse
with real event-stream frames, and verifies SigV4 signatures with its own signer. Its own gateway and
mock, so the seed lanes of conftest stay untouched."""
import subprocess
import tempfile
import time

import anthropic
import openai
import pytest

from conftest import BIN_DIR, _call, _free_port, _start_mock

AZURE_KEY = "azure-sdk-test-key-0004"
# The mock's known test credentials (switchyard_mock::sigv4).
AWS_ACCESS_KEY_ID = "AKIDMOCKSWITCHYARD01"
AWS_SECRET_ACCESS_KEY = "mockSecretKey/K7MDENG+bPxRfiCYSWITCHYARD"
USER = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def gateway():
    mock, mock_url = _start_mock(AZURE_KEY)
    origin = mock_url.removesuffix("/v1")
    port = _free_port()
    gw = subprocess.Popen(
        [str(BIN_DIR / "switchyard"), "--port", str(port), "--app-dir", tempfile.mkdtemp(prefix="switchyard-sdk-"),
         "--log-level", "warn"],
    )
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
        _call("POST", base + "/api/providers", {"provider": "azure", "network_config": {"max_retries": 0}})
        _call("POST", base + "/api/providers/azure/keys", {
            "name": "azure-eu", "value": AZURE_KEY, "models": ["*"],
            "azure_key_config": {"endpoint": origin, "deployments": {"gpt-4o": "prod-gpt4o"}},
        })
        _call("POST", base + "/api/providers",
              {"provider": "bedrock", "network_config": {"base_url": origin, "max_retries": 0}})
        _call("POST", base + "/api/providers/bedrock/keys", {
            "name": "aws-main", "models": ["*"],
            "bedrock_key_config": {"access_key": AWS_ACCESS_KEY_ID, "secret_key": AWS_SECRET_ACCESS_KEY,
                                   "region": "eu-central-1",
                                   "deployments": {"claude": "anthropic.claude-3-haiku-20240307-v1:0"}},
        })
        yield base
    finally:
        for p in (gw, mock):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=gateway + "/v1", api_key="dummy", _strict_response_validation=True,
                         max_retries=0, timeout=30)


@pytest.mark.parametrize("model", ["azure/gpt-4o", "bedrock/claude"])
def test_chat(oai, model):
    r = oai.chat.completions.create(model=model, messages=USER)
    assert r.choices[0].message.content == "echo: Hello"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens >= 1


@pytest.mark.parametrize("model", ["azure/gpt-4o", "bedrock/claude"])
def test_stream_with_usage(oai, model):
    stream = oai.chat.completions.create(model=model, messages=USER, stream=True,
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: Hello"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1


def test_bedrock_tool_call_stream_helper(oai):
    tools = [{"type": "function", "function": {"name": "get_weather",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}}}}}]
    with oai.chat.completions.stream(model="bedrock/tool-model", messages=USER, tools=tools) as s:
        final = s.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Berlin"}'


def test_bedrock_throttling_is_a_rate_limit_error(oai):
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="bedrock/throttle-model", messages=USER)


def test_anthropic_sdk_reaches_bedrock(gateway):
    claude = anthropic.Anthropic(base_url=gateway + "/anthropic", api_key="dummy",
                                 _strict_response_validation=True, max_retries=0, timeout=30)
    m = claude.messages.create(model="bedrock/claude", max_tokens=64, messages=USER)
    assert m.content[0].text == "echo: Hello"
    assert m.stop_reason == "end_turn"
    with claude.messages.stream(model="bedrock/claude", max_tokens=64, messages=USER) as s:
        final = s.get_final_message()
    assert final.content[0].text == "echo: Hello"
    assert final.usage.output_tokens >= 1
