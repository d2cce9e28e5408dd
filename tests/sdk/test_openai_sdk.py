"""The official openai-python SDK, in strict response-validation mode, as a real client of Switchyard.

Every call runs against both the unified route (/v1) and the Bifrost-style drop-in (/openai/v1), as the
seed guide tells users to configure `base_url`.
"""
import json
import urllib.request

import openai
import pytest

from conftest import GATEWAY_RETRIES

MSG = [{"role": "user", "content": "Hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(params=["/v1", "/openai/v1"])
def oai(request, lanes):
    # max_retries=0: SDK retries must not hide the gateway's own status codes.
    return openai.OpenAI(
        base_url=lanes["base"] + request.param,
        api_key="dummy",
        _strict_response_validation=True,
        max_retries=0,
        timeout=30,
    )


def mock_calls(url: str) -> dict:
    with urllib.request.urlopen(url + "/__calls", timeout=5) as r:
        return json.loads(r.read())


def test_seed_python_snippet_reaches_the_dedicated_lane(lanes):
    # Verbatim from the guide, with the model id our dedicated key serves.
    from openai import OpenAI

    client = OpenAI(api_key="dummy", base_url=lanes["base"] + "/openai/v1")
    before = mock_calls(lanes["dedicated_mock"])["chat"]
    response = client.chat.completions.create(
        model="PREMIUM-MODEL",
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert response.choices[0].message.content == "echo: Hello"
    assert mock_calls(lanes["dedicated_mock"])["chat"] == before + 1


def test_chat(oai):
    r = oai.chat.completions.create(model="mittwald-shared/gpt-oss-120b", messages=MSG)
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == "echo: Hello"
    assert r.usage.total_tokens > 0
    assert r.created > 0
    assert r.model_extra["extra_fields"]["provider"] == "mittwald-shared"


def test_bare_model_goes_to_the_shared_lane(oai, lanes):
    before = mock_calls(lanes["shared_mock"])["chat"]
    r = oai.chat.completions.create(model="gpt-oss-120b", messages=MSG)
    assert r.model == "gpt-oss-120b"
    assert mock_calls(lanes["shared_mock"])["chat"] == before + 1


def test_stream_with_usage(oai):
    chunks = list(
        oai.chat.completions.create(
            model="mittwald-shared/gpt-oss-120b",
            messages=MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: Hello"
    assert len({c.id for c in chunks}) == 1


def test_tool_call_stream(oai):
    with oai.chat.completions.stream(model="mittwald-shared/tool-weather", messages=MSG, tools=TOOLS) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Berlin"}'


def test_unknown_fields_pass_both_ways(oai):
    r = oai.chat.completions.create(
        model="mittwald-shared/Qwen3.5-122B-A10B-FP8",
        messages=MSG,
        extra_body={"chat_template_kwargs": {"enable_thinking": True}, "top_k": 20},
    )
    assert r.choices[0].message.model_extra["reasoning_content"] == "thinking"


def test_cut_stream_is_an_error(oai):
    with pytest.raises(openai.APIError):
        list(oai.chat.completions.create(model="mittwald-shared/cut", messages=MSG, stream=True))


@pytest.mark.parametrize(
    "model,exc",
    [
        ("mittwald-shared/fail", openai.InternalServerError),
        ("mittwald-shared/ratelimit", openai.RateLimitError),
        ("mittwald-shared/flat400", openai.BadRequestError),
        ("mittwald-shared/str401", openai.AuthenticationError),
        ("gemini/gemini-2.5-pro", openai.NotFoundError),
        ("openai/not-the-premium-model", openai.NotFoundError),
    ],
)
def test_error_mapping(oai, model, exc):
    with pytest.raises(exc) as e:
        oai.chat.completions.create(model=model, messages=MSG)
    body = e.value.body  # the SDK passes the "error" object through
    assert {"message", "type", "param", "code"} <= set(body)
    assert body["message"]


def test_models(oai):
    ids = [m.id for m in oai.models.list()]
    assert "mittwald-shared/gpt-oss-120b" in ids
    assert "openai/PREMIUM-MODEL" in ids
    assert "openai/gpt-oss-120b" not in ids  # outside the dedicated key's allowlist


def test_gateway_stops_client_retries(lanes):
    # SDK retries on: the final 5xx carries x-should-retry: false, so the upstream sees exactly
    # 1 + (gateway retries) attempts, not three times that.
    client = openai.OpenAI(base_url=lanes["base"] + "/v1", api_key="dummy", max_retries=2)
    before = mock_calls(lanes["shared_mock"])["chat"]
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="mittwald-shared/fail", messages=MSG)
    assert e.value.response.headers.get("x-should-retry") == "false"
    assert mock_calls(lanes["shared_mock"])["chat"] - before == 1 + GATEWAY_RETRIES
    trail = e.value.response.json()["extra_fields"]["attempts"]
    assert [a["outcome"] for a in trail] == ["500"] * (1 + GATEWAY_RETRIES)
