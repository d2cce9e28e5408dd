"""An MCP server built with the official SDK's MCPServer (FastMCP's successor in mcp 2), used as an
upstream of the gateway in test_mcp*.py.

    mcp_upstream.py NAME TRANSPORT [PORT] CALLS_FILE

TRANSPORT is streamable-http, sse or stdio. Every tool call appends "NAME TOOL" to CALLS_FILE, so a
test can tell which upstream saw which call (and that a refused call reached none); a `slow` call the
client cancels (`notifications/cancelled`) appends "NAME slow cancelled".
"""
import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

NAME, TRANSPORT = sys.argv[1], sys.argv[2]
PORT = int(sys.argv[3]) if TRANSPORT != "stdio" else 0
CALLS = sys.argv[-1]

server = MCPServer(NAME)


def _seen(tool: str) -> None:
    with open(CALLS, "a") as f:
        f.write(f"{NAME} {tool}\n")


class Sum(BaseModel):
    total: int
    server: str


@server.tool(description="Adds two integers.")
def add(a: int, b: int) -> Sum:
    _seen("add")
    return Sum(total=a + b, server=NAME)


@server.tool(description="Echoes its text back.")
def echo(text: str) -> str:
    _seen("echo")
    return f"{NAME}: {text}"


@server.tool(description="Answers after a while.")
async def slow(seconds: float) -> str:
    _seen("slow")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _seen("slow cancelled")
        raise
    return "finally"


@server.tool(description="The Authorization header this call came with (HTTP transports).")
def whoami(ctx: Context) -> str:
    _seen("whoami")
    request = ctx.request_context.request
    headers = getattr(request, "headers", None) or {}
    return headers.get("authorization", "")


@server.tool(description="Kills this server's process.")
def crash() -> str:
    _seen("crash")
    os._exit(3)


@server.tool(description="Reports a failure as a tool error.")
def fail() -> str:
    _seen("fail")
    raise ValueError("this tool always fails")


@server.tool(description="The process id of this server.")
def pid() -> int:
    _seen("pid")
    return os.getpid()


if __name__ == "__main__":
    if TRANSPORT == "stdio":
        server.run()
    else:
        server.run(TRANSPORT, host="127.0.0.1", port=PORT)
