"""The MCP gateway with the official MCP Python SDK as the client and SDK-built MCP servers as
upstreams over streamable HTTP (`calc`), HTTP+SSE (`legacy`) and stdio (`local`), all registered by
config.json. Tests run in file order; the ones that kill upstreams come last."""
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time

import pytest
from mcp.shared.exceptions import MCPError

from mcp_harness import (
    UPSTREAM,
    clients,
    free_port,
    http,
    seen,
    session,
    start_gateway,
    start_upstream,
    stop,
    wait_state,
)

WIDE = "sk-bf-mcp-wide-0123456789abcdef"
NARROW = "sk-bf-mcp-narrow-0123456789abcdef"
TIMEOUT_S = 2


@pytest.fixture(scope="module")
def env():
    calls = tempfile.mktemp(prefix="mcp-calls-")
    ports = {"calc": free_port(), "legacy": free_port()}
    procs = {
        "calc": start_upstream("calc", "streamable-http", ports["calc"], calls),
        "legacy": start_upstream("legacy", "sse", ports["legacy"], calls),
    }
    config = {
        "client": {"enforce_auth_on_inference": True},
        "governance": {
            "virtual_keys": [
                {
                    "id": "vk-wide",
                    "name": "wide",
                    "value": WIDE,
                    "mcp_configs": [
                        {"mcp_client_name": n, "tools_to_execute": ["*"]} for n in ("calc", "legacy", "local")
                    ],
                },
                {
                    "id": "vk-narrow",
                    "name": "narrow",
                    "value": NARROW,
                    "mcp_configs": [{"mcp_client_name": "calc", "tools_to_execute": ["add"]}],
                },
            ]
        },
        "mcp": {
            "client_configs": [
                {
                    "name": "calc",
                    "connection_type": "http",
                    "connection_string": f"http://127.0.0.1:{ports['calc']}/mcp",
                    "tools_to_execute": ["*"],
                },
                {
                    "name": "legacy",
                    "connection_type": "sse",
                    "connection_string": f"http://127.0.0.1:{ports['legacy']}/sse",
                    "tools_to_execute": ["*"],
                },
                {
                    "name": "local",
                    "connection_type": "stdio",
                    "stdio_config": {"command": sys.executable, "args": [UPSTREAM, "local", "stdio", calls]},
                    "tools_to_execute": ["*"],
                },
            ],
            "tool_manager_config": {"tool_execution_timeout": f"{TIMEOUT_S}s"},
        },
    }
    gw, base, _ = start_gateway(config)
    try:
        for name in ("calc", "legacy", "local"):
            wait_state(base, name, "connected")
        yield {"base": base, "calls": calls, "ports": ports, "procs": procs}
    finally:
        stop(gw)
        for p in procs.values():
            stop(p)


def mcp_logs(base: str, query: str, ready) -> dict:
    """`/api/mcp-logs?query` once `ready(page)` (rows are written off the calls' path)."""
    deadline = time.time() + 5
    while True:
        status, page = http("GET", f"{base}/api/mcp-logs?{query}")
        assert status == 200, page
        if ready(page) or time.time() > deadline:
            return page
        time.sleep(0.05)


def wide():
    return {"Authorization": f"Bearer {WIDE}"}


def test_config_json_registers_every_transport(env):
    listed = clients(env["base"])
    assert set(listed) == {"calc", "legacy", "local"}
    status, page = http("GET", env["base"] + "/api/mcp/clients")
    assert page["count"] == page["total_count"] == 3
    for name, transport in [("calc", "http"), ("legacy", "sse"), ("local", "stdio")]:
        c = listed[name]
        assert c["state"] == "connected"
        assert c["config"]["connection_type"] == transport
        assert {t["name"] for t in c["tools"]} == {"add", "echo", "slow", "crash", "fail", "pid", "whoami"}


async def _direct_tools(port: int) -> dict:
    async with session(f"http://127.0.0.1:{port}/mcp") as s:
        return {t.name: t for t in (await s.list_tools()).tools}


def test_list_and_call_through_mcp_with_the_upstreams_schemas_and_results(env):
    async def run():
        direct = await _direct_tools(env["ports"]["calc"])
        async with session(env["base"] + "/mcp", wide()) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert {f"{c}-{t}" for c in ("calc", "legacy", "local") for t in direct} == set(tools)
            for name, t in direct.items():
                mine = tools[f"calc-{name}"]
                assert mine.input_schema == t.input_schema
                assert mine.output_schema == t.output_schema
                assert mine.description == t.description
            r = await s.call_tool("calc-add", {"a": 2, "b": 3})
            assert not r.is_error
            assert r.structured_content == {"total": 5, "server": "calc"}
            assert json.loads(r.content[0].text) == {"total": 5, "server": "calc"}
            r = await s.call_tool("legacy-echo", {"text": "über SSE"})
            assert r.content[0].text == "legacy: über SSE"
            assert r.structured_content == {"result": "legacy: über SSE"}
            r = await s.call_tool("local-echo", {"text": "via stdio"})
            assert r.content[0].text == "local: via stdio"
            r = await s.call_tool("calc-fail", {})
            async with session(f"http://127.0.0.1:{env['ports']['calc']}/mcp") as d:
                expected = await d.call_tool("fail", {})
            assert r.is_error and expected.is_error
            assert r.content == expected.content

    asyncio.run(run())


def test_a_key_sees_and_calls_only_what_its_mcp_configs_allow(env):
    async def run():
        before = len(seen(env["calls"]))
        async with session(env["base"] + "/mcp", {"x-bf-vk": NARROW}) as s:
            tools = [t.name for t in (await s.list_tools()).tools]
            assert tools == ["calc-add"]
            for refused in ["calc-echo", "legacy-echo", "local-pid", "nosuch-tool", "calc-nosuch"]:
                with pytest.raises(MCPError):
                    await s.call_tool(refused, {"text": "x"})
            assert seen(env["calls"])[before:] == [], "a refused call reached an upstream"
            r = await s.call_tool("calc-add", {"a": 1, "b": 1})
            assert r.structured_content["total"] == 2
        assert seen(env["calls"])[before:] == ["calc add"]

    asyncio.run(run())


def test_a_key_is_required_and_read_from_every_header(env):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    status, answer = http("POST", env["base"] + "/mcp", body)
    assert status == 401, answer
    status, _ = http("POST", env["base"] + "/mcp", body, {"Authorization": "Bearer sk-bf-unknown-0123456789abcdef"})
    assert status == 401
    for header in [{"Authorization": f"Bearer {NARROW}"}, {"x-api-key": NARROW}, {"x-bf-vk": NARROW}]:
        status, answer = http("POST", env["base"] + "/mcp", body, header)
        assert status == 200, answer
        assert [t["name"] for t in answer["result"]["tools"]] == ["calc-add"]

    async def sdk_without_key():
        async with session(env["base"] + "/mcp"):
            pass

    with pytest.raises(BaseException):
        asyncio.run(sdk_without_key())


def test_every_call_is_a_log_row_and_a_metric(env):
    async def run():
        async with session(env["base"] + "/mcp", wide()) as s:
            await s.call_tool("legacy-add", {"a": 4, "b": 5})
        async with session(env["base"] + "/mcp", {"x-bf-vk": NARROW}) as s:
            with pytest.raises(MCPError):
                await s.call_tool("legacy-echo", {"text": "no"})

    asyncio.run(run())
    page = mcp_logs(env["base"], "server=legacy&limit=2", lambda p: p["logs"] and p["logs"][0]["status"] == "blocked")
    blocked, ok = page["logs"]
    assert (ok["tool"], ok["server"], ok["virtual_key_id"], ok["status"]) == ("add", "legacy", "vk-wide", "success")
    assert ok["latency_ms"] > 0
    assert (blocked["tool"], blocked["virtual_key_id"], blocked["status"]) == ("echo", "vk-narrow", "blocked")
    status, text = http("GET", env["base"] + "/metrics")
    assert re.search(r'switchyard_mcp_tool_calls_total\{tool="add",server="legacy",status="success"\} [1-9]', text)
    assert re.search(r'switchyard_mcp_tool_calls_total\{tool="echo",server="legacy",status="blocked"\} [1-9]', text)
    assert re.search(r'switchyard_mcp_tool_call_duration_seconds_count\{tool="add",server="legacy"\} [1-9]', text)


def test_tool_execute_takes_an_openai_tool_call(env):
    url = env["base"] + "/v1/mcp/tool/execute"
    call = {"id": "call_7", "type": "function", "function": {"name": "calc-add", "arguments": '{"a": 20, "b": 22}'}}
    status, answer = http("POST", url, call, wide())
    assert status == 200, answer
    assert answer["role"] == "tool" and answer["tool_call_id"] == "call_7"
    assert json.loads(answer["content"]) == {"total": 42, "server": "calc"}
    before = len(seen(env["calls"]))
    call["function"]["name"] = "calc-echo"
    status, answer = http("POST", url, call, {"x-bf-vk": NARROW})
    assert status == 403, answer
    assert answer["error"]["code"] == "mcp_tool_blocked"
    assert seen(env["calls"])[before:] == []
    status, answer = http("POST", url, call)
    assert status == 401, answer
    call["function"]["arguments"] = "not json"
    status, answer = http("POST", url, call, wide())
    assert status == 400 and answer["error"]["param"] == "function.arguments", answer


def test_a_hung_tool_times_out_while_another_call_answers(env):
    async def run():
        async with session(env["base"] + "/mcp", wide()) as s:
            started = time.monotonic()
            hung = asyncio.create_task(s.call_tool("calc-slow", {"seconds": 60}))
            await asyncio.sleep(0.2)
            quick = await s.call_tool("calc-add", {"a": 1, "b": 2})
            quick_after = time.monotonic() - started
            assert quick.structured_content["total"] == 3
            assert quick_after < TIMEOUT_S, f"a quick call waited {quick_after:.1f}s behind a hung one"
            r = await hung
            took = time.monotonic() - started
            assert r.is_error
            assert "calc" in r.content[0].text and "tool_execution_timeout" in r.content[0].text
            assert TIMEOUT_S - 0.5 < took < TIMEOUT_S + 3

    asyncio.run(run())
    mcp_logs(env["base"], "server=calc&limit=20", lambda p: any(r["tool"] == "slow" and r["status"] == "timeout" for r in p["logs"]))


def test_a_timed_out_call_is_cancelled_upstream_on_every_transport(env):
    """When tool_execution_timeout fires, the gateway sends `notifications/cancelled` with the call's
    request id: the hung tool (an SDK server) is interrupted instead of running on."""
    servers = ("calc", "legacy", "local")

    async def run():
        async with session(env["base"] + "/mcp", wide()) as s:
            hung = [s.call_tool(f"{name}-slow", {"seconds": 60}) for name in servers]
            for r in await asyncio.gather(*hung):
                assert r.is_error and "tool_execution_timeout" in r.content[0].text, r

    asyncio.run(run())
    deadline = time.time() + 5
    while not all(f"{name} slow cancelled" in seen(env["calls"]) for name in servers):
        assert time.time() < deadline, f"not every upstream saw the cancellation: {seen(env['calls'])}"
        time.sleep(0.05)


def test_a_crashed_stdio_server_is_started_again(env):
    async def run():
        async with session(env["base"] + "/mcp", wide()) as s:
            first = (await s.call_tool("local-pid", {})).structured_content["result"]
            r = await s.call_tool("local-crash", {})
            assert r.is_error
            deadline = time.time() + 20
            while True:
                r = await s.call_tool("local-pid", {})
                if not r.is_error:
                    break
                assert time.time() < deadline, r
                await asyncio.sleep(0.2)
            second = r.structured_content["result"]
            assert second != first
            with pytest.raises(ProcessLookupError):
                os.kill(first, 0)

    asyncio.run(run())
    assert clients(env["base"])["local"]["state"] == "connected"


def test_a_dead_http_server_is_reconnected_once_it_is_back(env):
    stop(env["procs"]["calc"])

    async def call():
        async with session(env["base"] + "/mcp", wide()) as s:
            return await s.call_tool("calc-add", {"a": 3, "b": 4})

    r = asyncio.run(call())
    assert r.is_error and "calc" in r.content[0].text
    down = clients(env["base"])["calc"]
    assert down["state"] in ("disconnected", "error"), down
    env["procs"]["calc"] = start_upstream("calc", "streamable-http", env["ports"]["calc"], env["calls"])
    wait_state(env["base"], "calc", "connected", timeout=20)
    r = asyncio.run(call())
    assert r.structured_content == {"total": 7, "server": "calc"}
