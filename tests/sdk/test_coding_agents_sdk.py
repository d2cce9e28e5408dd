"""The requests coding agents send, made with the official SDKs in strict mode: the anthropic SDK with a
system message inside `messages` (Claude Code's mid-conversation beta) and `models.list()`, and the
openai SDK's Responses API against a provider that does not serve it (the Anthropic lane: translated),
whose answers and stream events the SDK validates against its own types."""
import anthropic
import openai
import pytest

BETA = {"anthropic-beta": "claude-code-20250219,mid-conversation-system-2026-09-01"}


@pytest.fixture
def claude(lanes):
    return anthropic.Anthropic(
        base_url=lanes["base"] + "/anthropic", api_key="dummy", _strict_response_validation=True, max_retries=0
    )


@pytest.fixture
def oai(lanes):
    return openai.OpenAI(base_url=lanes["base"] + "/v1", api_key="dummy", _strict_response_validation=True, max_retries=0)


MID_SYSTEM = [
    {"role": "user", "content": "Hello"},
    {"role": "system", "content": "The user prefers short answers."},
]


def test_mid_conversation_system_message_to_an_openai_compatible_lane(claude):
    m = claude.messages.create(
        model="mittwald-shared/gpt-oss-120b", max_tokens=64, messages=MID_SYSTEM, extra_headers=BETA
    )
    assert m.stop_reason == "end_turn" and m.content[0].text == "echo: Hello"
    with claude.messages.stream(
        model="mittwald-shared/gpt-oss-120b", max_tokens=64, messages=MID_SYSTEM, extra_headers=BETA
    ) as s:
        assert "".join(s.text_stream) == "echo: Hello"


def test_reasoning_arrives_as_a_thinking_block(claude):
    with claude.messages.stream(model="mittwald-shared/reason-qwen3", max_tokens=64, messages=MID_SYSTEM[:1]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == "echo: Hello"


def test_models_list_in_anthropic_shape(claude):
    models = list(claude.models.list())
    ids = [m.id for m in models]
    assert "anthropic/claude-3-7-sonnet" in ids and all(m.type == "model" for m in models)
    m = claude.messages.create(model="anthropic/claude-3-7-sonnet", max_tokens=16, messages=MID_SYSTEM[:1])
    assert m.content[0].text == "echo: Hello"


def test_responses_translated_for_a_provider_without_them(oai):
    r = oai.responses.create(
        model="anthropic/claude-4-sonnet", instructions="Be brief.", input="Hi there", store=False,
        include=["reasoning.encrypted_content"], prompt_cache_key="session-1",
    )
    assert r.status == "completed" and r.output_text == "echo: Hi there"
    with oai.responses.stream(model="anthropic/claude-4-sonnet", input="Hi there") as s:
        final = s.get_final_response()
    assert final.output_text == "echo: Hi there" and final.usage.output_tokens > 0


def test_responses_function_call_round_trip(oai):
    tools = [{"type": "function", "name": "get_weather", "strict": False,
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    r = oai.responses.create(model="anthropic/tool-claude", input="Weather?", tools=tools)
    call = next(i for i in r.output if i.type == "function_call")
    assert call.name == "get_weather"
    follow = oai.responses.create(
        model="anthropic/claude-4-sonnet", tools=tools,
        input=[{"role": "user", "content": "Weather?"},
               {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert follow.status == "completed"
