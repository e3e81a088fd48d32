"""An agent on the gateway's MCP endpoint, through the official Python SDK (`mcp` from PyPI).

Run by tests/mcp.rs with MCP_URL (the endpoint on instance A), API_B (instance B's base URL),
SESSION, and optionally KEY (a bearer credential). It lists the tools, calls each, has
`ask_human` answered through instance B's HTTP API while the call waits on A, and makes bad
calls; it prints one JSON object of what each step got, which the Rust test checks.
"""

import asyncio
import json
import os
import sys
import time
import urllib.request

from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

URL, API_B, SESSION, KEY = (os.environ[k] for k in ("MCP_URL", "API_B", "SESSION", "KEY"))


def http(method, path, body=None):
    """A request to instance B's HTTP API: (status, JSON answer)."""
    req = urllib.request.Request(API_B + path, method=method)
    if KEY:
        req.add_header("Authorization", f"Bearer {KEY}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


async def call(s, name, args):
    """A tool call as data: the result (isError, structured) or the JSON-RPC error's code."""
    try:
        r = await s.call_tool(name, args)
    except MCPError as e:
        return {"rpcError": e.error.code, "message": e.error.message}
    structured = r.structured_content
    if structured is None and r.content:
        structured = json.loads(r.content[0].text)
    return {"isError": bool(r.is_error), "answer": structured}


async def answer_from_b(question):
    """Waits (off the event loop) until the session awaits input, then answers it on B."""
    def run():
        deadline = time.time() + 20
        while time.time() < deadline:
            s, v = http("GET", f"/api/sessions/{SESSION}")
            if s == 200 and v.get("conversationState") == "awaiting_input":
                prompt = (v.get("lastPrompt") or {}).get("promptText")
                return prompt, http("POST", f"/api/sessions/{SESSION}/input", {"input": "yes"})[0]
            time.sleep(0.05)
        return None, None
    return await asyncio.to_thread(run)


async def main():
    out = {}
    headers = {"X-Afw-Session": SESSION}
    if KEY:
        headers["Authorization"] = f"Bearer {KEY}"
    async with create_mcp_http_client(headers=headers) as client:
        async with streamable_http_client(URL, http_client=client) as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                out["server"] = init.server_info.name
                tools = await s.list_tools()
                out["tools"] = {t.name: t.input_schema for t in tools.tools}
                out["report"] = await call(s, "report", {"type": "note", "eventId": "mcp-1", "text": "hi"})
                out["report_again"] = await call(s, "report", {"type": "note", "eventId": "mcp-1", "text": "hi"})
                out["chain"] = await call(s, "report", {"type": "chain:compiled", "chainId": "c1", "title": "t", "steps": ["a", "b"]})
                out["step_started"] = await call(s, "report_step", {"chainId": "c1", "stepNumber": 1, "status": "started"})
                out["step_completed"] = await call(s, "report_step", {"chainId": "c1", "stepNumber": 1, "status": "completed", "result": {"ok": True}})
                out["no_command"] = await call(s, "next_command", {"waitSecs": 0})
                waiting = asyncio.ensure_future(call(s, "next_command", {"waitSecs": 10}))
                await asyncio.sleep(0.3)
                out["command_posted"] = await asyncio.to_thread(http, "POST", f"/api/sessions/{SESSION}/commands", {"type": "pause"})
                out["command"] = await waiting
                commands = (out["command"]["answer"] or {}).get("commands") or [{}]
                out["ack"] = await call(s, "ack_command", {"commandId": commands[0].get("commandId", "none"), "result": "paused"})
                out["lock"] = await call(s, "acquire_lock", {"name": "build lock", "owner": "agent-1", "ttlMs": 10000})
                out["lock_taken"] = await call(s, "acquire_lock", {"name": "build lock", "owner": "agent-2", "ttlMs": 10000})
                token = (out["lock"]["answer"] or {}).get("token", "none")
                out["unlock"] = await call(s, "release_lock", {"name": "build lock", "token": token})
                out["enqueue"] = await call(s, "enqueue_job", {"queue": "mcp-q", "type": "build", "data": {"n": 1}, "jobId": "j1"})
                out["claim"] = await call(s, "claim_job", {"queue": "mcp-q", "workerId": "w1"})
                out["complete"] = await call(s, "complete_job", {"queue": "mcp-q", "jobId": "j1", "workerId": "w1", "result": "built"})
                asked = asyncio.ensure_future(call(s, "ask_human", {"question": "Ship it?", "choices": ["yes", "no"], "timeoutSecs": 30}))
                out["prompt_seen_on_b"], out["answered_on_b"] = await answer_from_b("Ship it?")
                out["ask"] = await asked
                out["ask_unanswered"] = await call(s, "ask_human", {"question": "Anyone?", "timeoutSecs": 1})
                out["bad_tool"] = await call(s, "no_such_tool", {})
                out["bad_args"] = await call(s, "claim_job", {"queue": "q", "workerId": "w", "bogus": 1})
                out["bad_type"] = await call(s, "report", {"text": "no type"})
                out["bad_lock"] = await call(s, "acquire_lock", {"name": "x", "owner": "o", "ttlMs": -5})
                out["other_session"] = await call(s, "report", {"sessionId": "mcp-other", "type": "t"})
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
