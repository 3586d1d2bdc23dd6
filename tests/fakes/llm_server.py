"""A local fake LLM server speaking the real OpenAI and Anthropic wire formats.

`POST /v1/chat/completions` answers like OpenAI Chat Completions and `POST /v1/messages`
like Anthropic Messages, both plain JSON and SSE streaming (`"stream": true`), so the
official `openai` and `anthropic` SDKs can be driven end to end without a network.
Replies are scripted with `enqueue()` (FIFO, shared by both protocols) or computed by a
`responder`; every request is recorded. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeAlias, cast

JSON: TypeAlias = dict[str, Any]


@dataclass
class Text:  # a final text answer
    text: str
    input_tokens: int = 10
    output_tokens: int = 5


@dataclass
class Call:  # one tool call; a str `arguments` is sent verbatim (e.g. malformed JSON)
    name: str
    arguments: dict[str, Any] | str
    id: str | None = None


@dataclass
class ToolCalls:  # a turn asking for one or more tool calls (parallel when several)
    calls: list[Call]
    text: str = ""
    input_tokens: int = 10
    output_tokens: int = 5


@dataclass
class Error:  # an HTTP error in the provider's own error format
    status: int
    message: str = "fake error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Delay:  # sleep before sending `then` (to trigger client timeouts)
    seconds: float
    then: Reply


Reply: TypeAlias = Text | ToolCalls | Error | Delay


@dataclass
class RecordedRequest:
    protocol: str  # "openai" or "anthropic"
    path: str  # without the query string
    headers: dict[str, str]  # lower-cased names
    body: JSON


Responder: TypeAlias = Callable[[RecordedRequest], Reply]
ROUTES = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _pieces(text: str, count: int = 3) -> list[str]:
    """Split `text` into at most `count` non-empty consecutive pieces."""
    size = max(1, math.ceil(len(text) / count))
    return [text[i : i + size] for i in range(0, len(text), size)]


def as_turn(reply: Text | ToolCalls) -> ToolCalls:
    if isinstance(reply, ToolCalls):
        return reply
    return ToolCalls([], reply.text, reply.input_tokens, reply.output_tokens)


def _resolved_calls(turn: ToolCalls, prefix: str) -> list[tuple[str, str, str]]:
    """(id, name, arguments as JSON text) for each call, generating missing ids."""
    texts = [call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments) for call in turn.calls]
    return [(call.id or new_id(prefix), call.name, text) for call, text in zip(turn.calls, texts, strict=True)]


def _has_text_block(turn: ToolCalls) -> bool:
    return bool(turn.text) or not turn.calls


# --- OpenAI Chat Completions -------------------------------------------------------------


def _openai_usage(turn: ToolCalls) -> JSON:
    total = turn.input_tokens + turn.output_tokens
    return {"prompt_tokens": turn.input_tokens, "completion_tokens": turn.output_tokens, "total_tokens": total}


def _openai_envelope(kind: str, model: str, completion_id: str, created: int) -> JSON:
    return {"id": completion_id, "object": kind, "created": created, "model": model, "system_fingerprint": "fp_fake"}


def openai_completion(turn: ToolCalls, model: str) -> JSON:
    message: JSON = {"role": "assistant", "content": turn.text if _has_text_block(turn) else None}
    message.update(refusal=None, annotations=[])
    if turn.calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in _resolved_calls(turn, "call_")
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if turn.calls else "stop"}
    envelope = _openai_envelope("chat.completion", model, new_id("chatcmpl-"), int(time.time()))
    return {**envelope, "choices": [choice], "usage": _openai_usage(turn), "service_tier": "default"}


def _openai_deltas(turn: ToolCalls) -> Iterator[JSON]:
    yield {"role": "assistant", "content": "", "refusal": None}
    for piece in _pieces(turn.text):
        yield {"content": piece}
    for index, (cid, name, args) in enumerate(_resolved_calls(turn, "call_")):
        head = {"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}
        yield {"tool_calls": [head]}
        for piece in _pieces(args):
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def openai_chunks(turn: ToolCalls, model: str, include_usage: bool) -> Iterator[JSON]:
    envelope = _openai_envelope("chat.completion.chunk", model, new_id("chatcmpl-"), int(time.time()))
    if include_usage:
        envelope["usage"] = None
    for delta in _openai_deltas(turn):
        yield {**envelope, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
    finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls" if turn.calls else "stop"}
    yield {**envelope, "choices": [finish]}
    if include_usage:
        yield {**envelope, "choices": [], "usage": _openai_usage(turn)}


def openai_error(status: int, message: str) -> JSON:
    if status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", None
    else:
        kind, code = "invalid_request_error", {401: "invalid_api_key", 404: "unknown_url"}.get(status)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --- Anthropic Messages --------------------------------------------------------------------


def _anthropic_input(arguments: str) -> Any:
    """Anthropic sends `input` as an object; text that is not a JSON object stays a string."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    return parsed if isinstance(parsed, dict) else arguments


def _anthropic_blocks(turn: ToolCalls) -> list[tuple[JSON, str]]:
    """Each content block with its raw text (text, or tool input JSON) for streaming."""
    blocks: list[tuple[JSON, str]] = []
    if _has_text_block(turn):
        blocks.append(({"type": "text", "text": turn.text}, turn.text))
    for cid, name, args in _resolved_calls(turn, "toolu_01"):
        block = {"type": "tool_use", "id": cid, "name": name, "input": _anthropic_input(args)}
        blocks.append((block, args))
    return blocks


def _anthropic_message(turn: ToolCalls, model: str, content: list[JSON], done: bool) -> JSON:
    stop_reason = ("tool_use" if turn.calls else "end_turn") if done else None
    output_tokens = turn.output_tokens if done else 1  # message_start carries a provisional count
    usage = {"input_tokens": turn.input_tokens, "output_tokens": output_tokens}
    head = {"id": new_id("msg_01"), "type": "message", "role": "assistant", "model": model, "content": content}
    return {**head, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}


def anthropic_message(turn: ToolCalls, model: str) -> JSON:
    return _anthropic_message(turn, model, [block for block, _ in _anthropic_blocks(turn)], done=True)


def _anthropic_block_events(index: int, block: JSON, raw: str) -> Iterator[JSON]:
    is_text = block["type"] == "text"
    start = {**block, "text": ""} if is_text else {**block, "input": {}}
    yield {"type": "content_block_start", "index": index, "content_block": start}
    for piece in _pieces(raw):
        delta = (
            {"type": "text_delta", "text": piece} if is_text else {"type": "input_json_delta", "partial_json": piece}
        )
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


def anthropic_events(turn: ToolCalls, model: str) -> Iterator[JSON]:
    yield {"type": "message_start", "message": _anthropic_message(turn, model, [], done=False)}
    yield {"type": "ping"}
    for index, (block, raw) in enumerate(_anthropic_blocks(turn)):
        yield from _anthropic_block_events(index, block, raw)
    delta = {"stop_reason": "tool_use" if turn.calls else "end_turn", "stop_sequence": None}
    yield {"type": "message_delta", "delta": delta, "usage": {"output_tokens": turn.output_tokens}}
    yield {"type": "message_stop"}


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> JSON:
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": new_id("req_011")}


# --- Answers, whatever server sends them ----------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A reply as it goes on the wire: a JSON body (sent with Content-Length), or SSE events
    (sent chunked). Shared by the threaded server below and the asyncio one (llm_async_server)."""

    status: int
    content_type: str
    headers: dict[str, str]
    body: bytes = b""
    events: tuple[bytes, ...] | None = None


def route(path: str, headers: dict[str, str]) -> tuple[str, bool]:
    """The protocol a request speaks ("openai" or "anthropic"), and whether its path is served."""
    protocol = ROUTES.get(path) or ("anthropic" if "anthropic-version" in headers else "openai")
    return protocol, path in ROUTES


def parse_json(raw: bytes) -> JSON | None:
    """The request body as a JSON object ({} when empty); None when it is not one."""
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def answer(request: RecordedRequest, reply: Text | ToolCalls | Error) -> Answer:
    """The bytes for `reply` in the request's protocol: JSON, SSE when it asked to stream, or an error."""
    request_id = {("request-id" if request.protocol == "anthropic" else "x-request-id"): new_id("req_")}
    if isinstance(reply, Error):
        maker = anthropic_error if request.protocol == "anthropic" else openai_error
        body = json.dumps(maker(reply.status, reply.message)).encode()
        return Answer(reply.status, "application/json", {**request_id, **reply.headers}, body)
    if request.body.get("stream"):
        events = tuple(sse_bytes(request, as_turn(reply)))
        return Answer(200, "text/event-stream; charset=utf-8", {**request_id, "Cache-Control": "no-cache"}, b"", events)
    message = anthropic_message if request.protocol == "anthropic" else openai_completion
    return Answer(200, "application/json", request_id, json.dumps(message(as_turn(reply), model_of(request))).encode())


def answer_bad_request(request: RecordedRequest, method: str, body: JSON | None, served: bool) -> Answer | None:
    """The provider-format 404 or 400 for a request that cannot get a reply; None for one that can."""
    if not served or method != "POST":
        return answer(request, Error(404, f"Invalid URL ({method} {request.path})"))
    if body is None:
        return answer(request, Error(400, "The request body is not a valid JSON object."))
    unanswered = unanswered_calls(request.protocol, body.get("messages") or [])
    if unanswered:
        return answer(request, Error(400, unanswered))
    return None


def unanswered_calls(protocol: str, messages: list[Any]) -> str:
    """The provider's own 400 message for a transcript with a tool call left without its
    result, as OpenAI and Anthropic refuse it; "" when every call has its result."""
    check = _openai_unanswered if protocol == "openai" else _anthropic_unanswered
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            found = check(messages, index)
            if found:
                return found
    return ""


def _openai_unanswered(messages: list[Any], index: int) -> str:
    wanted = [str(c.get("id")) for c in messages[index].get("tool_calls") or [] if isinstance(c, dict)]
    answered = set()
    for later in messages[index + 1 :]:
        if not isinstance(later, dict) or later.get("role") != "tool":
            break
        answered.add(str(later.get("tool_call_id")))
    missing = [call for call in wanted if call not in answered]
    if not missing:
        return ""
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(missing)}"
    )


def _blocks(message: Any) -> list[JSON]:
    content = message.get("content") if isinstance(message, dict) else None
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def _anthropic_unanswered(messages: list[Any], index: int) -> str:
    wanted = [str(b.get("id")) for b in _blocks(messages[index]) if b.get("type") == "tool_use"]
    following = messages[index + 1] if index + 1 < len(messages) else None
    answered = {str(b.get("tool_use_id")) for b in _blocks(following) if b.get("type") == "tool_result"}
    missing = [call for call in wanted if call not in answered]
    if not missing:
        return ""
    return (
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
        "in the next message."
    )


def next_reply_safely(fake: FakeLLMServer, request: RecordedRequest) -> Reply:
    try:
        return fake.next_reply(request)
    except Exception as exc:  # noqa: BLE001 - a broken responder should show up as an HTTP 500
        return Error(500, f"fake server responder failed: {exc!r}")


# --- HTTP plumbing -------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of runs connect at once in the capacity tests
    block_on_close = False
    fake: FakeLLMServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Stay quiet: the server is used in tests and benchmarks."""

    def handle(self) -> None:
        try:
            super().handle()
        except ConnectionError:  # the client went away: timed out during a Delay, or dropped a read stream
            self.close_connection = True

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        protocol, served = route(path, headers)
        body = parse_json(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        fake = cast(_HTTPServer, self.server).fake
        request = RecordedRequest(protocol, path, headers, body if body is not None else {})
        fake.record(request)
        refused = answer_bad_request(request, self.command, body, served)
        if refused is not None:
            self._send(refused)
            return
        reply = next_reply_safely(fake, request)
        while isinstance(reply, Delay):
            time.sleep(reply.seconds)
            reply = reply.then
        self._send(answer(request, reply))

    def _send(self, out: Answer) -> None:
        self.send_response(out.status)
        self.send_header("Content-Type", out.content_type)
        for name, value in out.headers.items():
            self.send_header(name, value)
        if out.events is None:
            self.send_header("Content-Length", str(len(out.body)))
            self.end_headers()
            self.wfile.write(out.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in out.events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")


def model_of(request: RecordedRequest) -> str:
    model = request.body.get("model")
    return model if isinstance(model, str) else "fake-model"


def sse_bytes(request: RecordedRequest, turn: ToolCalls) -> Iterator[bytes]:
    """OpenAI sends bare `data:` lines ended by `[DONE]`; Anthropic names every event."""
    if request.protocol == "anthropic":
        for event in anthropic_events(turn, model_of(request)):
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        return
    options = request.body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    for chunk in openai_chunks(turn, model_of(request), include_usage):
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


# --- Public server -------------------------------------------------------------------------


class FakeLLMServer:
    """Serves both protocols on one port from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, responder: Responder | None = None) -> None:
        self.host = host
        self.port = port
        self.responder = responder
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def openai_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.fake = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-llm-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        """Script replies, consumed first-in first-out by requests of either protocol."""
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        """Forget scripted replies and recorded requests (between tests)."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._queue)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(request) if self.responder is not None else Text("ok")


# --- Benchmark responder -------------------------------------------------------------------


def _sample(prop: JSON) -> Any:
    kind = prop.get("type", "string")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    samples: JSON = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    return prop["enum"][0] if prop.get("enum") else samples.get(kind, "x")


def _fill_required(schema: JSON) -> dict[str, Any]:
    props = schema.get("properties") or {}
    return {name: _sample(props.get(name) or {}) for name in schema.get("required") or []}


def _is_tool_result(protocol: str, message: object) -> bool:
    if not isinstance(message, dict):
        return False
    if protocol == "openai":
        return message.get("role") == "tool"
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return message.get("role") == "user" and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in blocks
    )


def _first_tool(request: RecordedRequest) -> tuple[str, JSON] | None:
    schema_key = "parameters" if request.protocol == "openai" else "input_schema"
    for tool in request.body.get("tools") or []:
        spec = tool.get("function", tool) if request.protocol == "openai" else tool
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            return spec["name"], spec.get(schema_key) or {}
    return None


def one_tool_call_responder(request: RecordedRequest) -> Reply:
    """For benchmarks: if the conversation's last message is a tool result (OpenAI role "tool",
    or Anthropic user message whose content holds a tool_result block), answer Text("done");
    otherwise, if the request offers tools, call the first tool with {} filled so that each
    required string parameter gets "x" (ints 1); otherwise Text("ok")."""
    messages = request.body.get("messages") or []
    if messages and _is_tool_result(request.protocol, messages[-1]):
        return Text("done")
    tool = _first_tool(request)
    if tool is None:
        return Text("ok")
    name, schema = tool
    return ToolCalls([Call(name, _fill_required(schema))])


def with_latency(responder: Responder | None, seconds: float) -> Responder | None:
    """`responder` (or the default "ok") answering each call after `seconds`, like a model that thinks."""
    if seconds <= 0:
        return responder
    return lambda request: Delay(seconds, responder(request) if responder is not None else Text("ok"))


def cli_arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    """The command line shared by this server and the asyncio one (llm_async_server)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mode", choices=["one-tool-call", "ok"], default="ok")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each call is answered")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = cli_arguments("Fake OpenAI/Anthropic LLM server for tests and benchmarks.", argv)
    responder = with_latency(one_tool_call_responder if args.mode == "one-tool-call" else None, args.latency)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with FakeLLMServer(args.host, args.port, responder) as server:
        print(f"listening on http://{server.host}:{server.port}", flush=True)
        while not stopping.wait(0.5):
            pass


if __name__ == "__main__":
    main()
