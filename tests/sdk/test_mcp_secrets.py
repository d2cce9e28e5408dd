"""MCP client header values (upstream credentials) at rest: with SWITCHYARD_ENCRYPTION_KEY set they are
sealed in the config database like provider keys, yet every call still carries them upstream, also
after a restart; and they never show in the gateway's log output or in /api/mcp-logs."""
import asyncio
import json
import pathlib
import tempfile

from mcp_harness import free_port, http, seen, session, start_gateway, start_upstream, stop, wait_state

KEY = "sk-bf-mcp-secrets-0123456789abcdef"
TOKEN = "upstream-token-QWERTY-0123456789"
ENCRYPTION = {"SWITCHYARD_ENCRYPTION_KEY": "mcp-secrets-test-key-0123456789abcdef"}
CONFIG = {
    "client": {"enforce_auth_on_inference": True},
    "governance": {
        "virtual_keys": [
            {
                "id": "vk-vault",
                "name": "vault",
                "value": KEY,
                "mcp_configs": [{"mcp_client_name": "vault", "tools_to_execute": ["*"]}],
            }
        ]
    },
}


def at_rest(app_dir: str) -> bytes:
    """Every byte of the config database (and its write-ahead log): what a copy of the disk holds."""
    return b"".join(p.read_bytes() for p in pathlib.Path(app_dir).glob("config.db*"))


async def whoami(base: str) -> str:
    async with session(base + "/mcp", {"Authorization": f"Bearer {KEY}"}) as s:
        r = await s.call_tool("vault-whoami", {})
        assert not r.is_error, r
        return r.content[0].text


def test_header_values_are_sealed_at_rest_and_still_sent_upstream():
    calls = tempfile.mktemp(prefix="mcp-calls-")
    port = free_port()
    upstream = start_upstream("vault", "streamable-http", port, calls)
    log_path = tempfile.mktemp(prefix="mcp-secrets-log-")
    gw = None
    try:
        with open(log_path, "w") as log:
            gw, base, app_dir = start_gateway(CONFIG, env=ENCRYPTION, log=log, level="debug")
            body = {
                "name": "vault",
                "connection_type": "http",
                "connection_string": f"http://127.0.0.1:{port}/mcp",
                "tools_to_execute": ["*"],
                "headers": {"Authorization": f"Bearer {TOKEN}"},
            }
            status, answer = http("POST", base + "/api/mcp/client", body)
            assert status == 200, answer
            assert TOKEN not in json.dumps(answer)
            wait_state(base, "vault", "connected")
            assert asyncio.run(whoami(base)) == f"Bearer {TOKEN}"

            stored = at_rest(app_dir)
            assert TOKEN.encode() not in stored
            assert b"sy-enc:v1:" in stored

            stop(gw)
            gw, base, _ = start_gateway(CONFIG, app_dir=app_dir, env=ENCRYPTION, log=log, level="debug")
            wait_state(base, "vault", "connected")
            assert asyncio.run(whoami(base)) == f"Bearer {TOKEN}"
            assert TOKEN.encode() not in at_rest(app_dir)

            status, page = http("GET", base + "/api/mcp-logs?server=vault&limit=50")
            assert status == 200, page
            assert TOKEN not in json.dumps(page)
            status, listed = http("GET", base + "/api/mcp/clients")
            assert status == 200 and TOKEN not in json.dumps(listed)
        assert seen(calls).count("vault whoami") == 2
        output = pathlib.Path(log_path).read_text()
        assert "vault" in output, "the gateway logged nothing about the client: the check below proves nothing"
        assert TOKEN not in output
    finally:
        if gw is not None:
            stop(gw)
        stop(upstream)


def test_a_store_with_sealed_headers_does_not_start_without_the_key():
    gw, base, app_dir = start_gateway(CONFIG, env=ENCRYPTION)
    try:
        body = {
            "name": "vault",
            "connection_type": "http",
            "connection_string": f"http://127.0.0.1:{free_port()}/mcp",
            "tools_to_execute": ["*"],
            "headers": {"X-Api-Key": TOKEN},
        }
        status, answer = http("POST", base + "/api/mcp/client", body)
        assert status == 200, answer
    finally:
        stop(gw)
    assert TOKEN.encode() not in at_rest(app_dir)
    log_path = tempfile.mktemp(prefix="mcp-secrets-log-")
    with open(log_path, "w") as log:
        try:
            gw, _, _ = start_gateway(CONFIG, app_dir=app_dir, log=log)
        except RuntimeError:
            gw = None
    if gw is not None:
        stop(gw)
        raise AssertionError("the gateway started without the key its MCP headers were sealed with")
    output = pathlib.Path(log_path).read_text()
    assert "SWITCHYARD_ENCRYPTION_KEY" in output and TOKEN not in output, output
