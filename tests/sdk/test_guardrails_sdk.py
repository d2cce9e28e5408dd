"""Guardrails as the official openai-python SDK sees them: a block is an ordinary BadRequestError with
the guardrail's message and code (LiteLLM's block body puts an object where the SDK expects a message);
a streamed block is an APIError raised mid-iteration, after the text before the match; a Responses API
stream is redacted or ends with its own `error` event, all read by the strict types."""
import json
import urllib.request

import openai
import pytest

from conftest import _call

IBAN = "DE89 3704 0044 0532 0130 00"


@pytest.fixture
def guarded(lanes):
    """A virtual key and a guardrail scoped to it, so the rest of the session is unaffected."""
    base = lanes["base"]
    vk = _call("POST", base + "/api/governance/virtual-keys", {"name": "sdk-guarded"})["virtual_key"]
    g = _call(
        "POST",
        base + "/api/guardrails",
        {"name": "sdk-iban", "type": "pii", "entities": ["iban"], "stage": "both",
         "scope": {"virtual_key_ids": [vk["id"]]}},
    )["guardrail"]
    client = openai.OpenAI(base_url=base + "/v1", api_key=vk["value"], _strict_response_validation=True,
                           max_retries=0, timeout=30)
    yield base, client, g["id"]
    req = urllib.request.Request(base + f"/api/guardrails/{g['id']}", method="DELETE")
    urllib.request.urlopen(req, timeout=5).read()


def test_a_block_is_a_bad_request_error_with_the_message(guarded):
    _, client, _ = guarded
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="mittwald-shared/echo",
                                       messages=[{"role": "user", "content": f"IBAN {IBAN}"}])
    assert e.value.status_code == 400
    assert e.value.code == "guardrail_blocked"
    assert "sdk-iban" in e.value.message and IBAN not in e.value.message


def test_a_redacted_request_answers_normally(guarded):
    base, client, gid = guarded
    body = json.dumps({"action": "redact"}).encode()
    req = urllib.request.Request(base + f"/api/guardrails/{gid}", data=body, method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    answer = client.chat.completions.create(model="mittwald-shared/echo",
                                            messages=[{"role": "user", "content": f"IBAN {IBAN} ok"}])
    assert answer.choices[0].message.content == "echo: IBAN [IBAN_REDACTED] ok"


def test_a_streamed_block_raises_mid_stream(guarded):
    base, client, gid = guarded
    body = json.dumps({"stage": "response"}).encode()
    req = urllib.request.Request(base + f"/api/guardrails/{gid}", data=body, method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    seen = ""
    with pytest.raises(openai.APIError) as e:
        for chunk in client.chat.completions.create(model="mittwald-shared/echo", stream=True,
                                                    messages=[{"role": "user", "content": f"Konto {IBAN}"}]):
            if chunk.choices:
                seen += chunk.choices[0].delta.content or ""
    assert "sdk-iban" in str(e.value.message)
    assert seen == "echo: Konto " and "DE89" not in seen


def _update(base, gid, fields):
    req = urllib.request.Request(base + f"/api/guardrails/{gid}", data=json.dumps(fields).encode(),
                                 method="PUT", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def test_a_redacted_responses_stream_parses_strictly(guarded):
    """The Responses API stream with its deltas redacted (and the held text sent as one more delta)
    is read by the SDK's strict types; the final response carries the same redacted text."""
    base, client, gid = guarded
    _update(base, gid, {"stage": "response", "action": "redact"})
    seen = ""
    final = None
    with client.responses.stream(model="mittwald-shared/echo", input=f"Konto {IBAN} bitte") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                seen += event.delta
        final = stream.get_final_response()
    assert seen == "echo: Konto [IBAN_REDACTED] bitte"
    assert final.output_text == seen


def test_a_blocked_responses_stream_ends_with_its_error_event(guarded):
    base, client, gid = guarded
    _update(base, gid, {"stage": "response", "action": "block"})
    seen, errors = "", []
    for event in client.responses.create(model="mittwald-shared/echo", stream=True,
                                          input=f"Konto {IBAN} bitte"):
        if event.type == "response.output_text.delta":
            seen += event.delta
        elif event.type == "error":
            errors.append(event)
    assert seen == "echo: Konto "
    assert [e.code for e in errors] == ["guardrail_blocked"]
    assert "sdk-iban" in errors[0].message
