"""The official anthropic SDK (strict response validation) against Switchyard's /anthropic drop-in,
plus the openai SDK reaching the Anthropic lane. The SDK's stream accumulator raises on out-of-order
events, so it doubles as a validator of the Anthropic event streams the gateway produces."""
import json

import anthropic
import openai
import pytest

TOOLS = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
USER = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def claude(lanes):
    return anthropic.Anthropic(
        base_url=lanes["base"] + "/anthropic",
        api_key="dummy",
        _strict_response_validation=True,
        max_retries=0,
        timeout=30,
    )


def test_messages_to_the_anthropic_lane(claude):
    m = claude.messages.create(model="claude-3-7-sonnet", max_tokens=64, messages=USER)
    assert m.stop_reason == "end_turn"
    assert m.content[0].text == "echo: Hello"
    assert m.usage.input_tokens >= 0


def test_messages_to_an_openai_compatible_lane(claude):
    m = claude.messages.create(model="mittwald-shared/gpt-oss-120b", max_tokens=64, system="Be brief.", messages=USER)
    assert m.stop_reason == "end_turn"
    assert m.content[0].text == "echo: Hello"


@pytest.mark.parametrize("model", ["tool-claude", "mittwald-shared/tool-weather"])
def test_stream_helper_assembles_a_tool_call(claude, model):
    # Pass-through from the Anthropic lane, and translated from an OpenAI-compatible stream.
    with claude.messages.stream(model=model, max_tokens=64, tools=TOOLS, messages=USER) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use"
    assert final.content[-1].input == {"city": "Berlin"}


def test_text_stream(claude):
    with claude.messages.stream(model="mittwald-shared/gpt-oss-120b", max_tokens=64, messages=USER) as s:
        text = "".join(s.text_stream)
    assert text == "echo: Hello"


def test_overloaded_maps_to_sdk_error(claude):
    # Named explicitly: as a bare model it would fall through to the shared lane, which serves '*'.
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model="anthropic/overloaded-claude", max_tokens=8, messages=USER)


def test_unknown_provider_is_a_not_found_error(claude):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="vertex/gemini-x", max_tokens=8, messages=USER)
    assert e.value.body["type"] == "error"


def test_openai_sdk_streams_a_tool_call_from_the_anthropic_lane(lanes):
    oai = openai.OpenAI(
        base_url=lanes["base"] + "/v1", api_key="dummy", _strict_response_validation=True, max_retries=0
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": TOOLS[0]["input_schema"]}}]
    with oai.chat.completions.stream(model="anthropic/tool-claude", messages=USER, tools=tools) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"city": "Berlin"}
    plain = oai.chat.completions.create(model="claude-3-7-sonnet", messages=USER)
    assert plain.choices[0].message.content == "echo: Hello"
    assert plain.model_extra["extra_fields"]["provider"] == "anthropic"
