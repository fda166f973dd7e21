#!/usr/bin/env python3
"""Scripted Anthropic Messages API server for ccdeck's tests (stdlib only).

Usage:
    python3 Tests/Fixtures/model_server.py --scenario NAME [--port 0] [--request-log FILE]
                                           [--workspace DIR] [--delay S] [--verbose]

Binds 127.0.0.1 (port 0 picks a free port), prints exactly ``PORT <n>`` on
stdout once listening, then serves until SIGTERM/SIGINT.

``POST /v1/messages`` (with or without ``?beta=true``) is the model. A
request that carries ``tools`` is a main-loop request: the scenario decides
the answer from the number of ``tool_result`` blocks in the request's
messages (the "turn"). Anything else gets a sane answer so a run never fails
because of it:

* ``POST /v1/messages`` without ``tools`` (start-up model check, quota probe,
  title/topic requests): a short text answer. In the HTTP error scenarios
  these fail the same way as the main loop, since a real API would too.
* ``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``.
* ``HEAD``/``GET`` anything, other ``POST``s: ``200 {}``.

Streaming requests (``"stream": true``) get server-sent events; others
(e.g. the CLI's non-streaming fallback) get a JSON message.

Scenarios (turn = number of tool_result blocks in the request):

  write_and_bash   0: Write /workspace/hello.txt  1: Bash cat + write
                   /workspace/bash-ran.txt  2: text "All done."
  kernel           0: Bash cat /proc/version > /workspace/kernel.txt  1: text
  escape           0: Bash that tries to read every home's .claude/.credentials.json, write
                   outside the workspace and list /run and /tmp, noting each in
                   /workspace/escape.txt and printing it (the tool result)  1: text
  egress           0: Bash that curls an allowed host, hosts off the list (http, https,
                   an IP literal, a redirect to one) and a host address directly,
                   noting each status in /workspace/egress.txt  1: text
  egress_nc        the same with nc and raw HTTP through $HTTP_PROXY (images without
                   curl): an allowed host, one off the list, a host address directly
  changes          0: Bash adding added.txt and sub/blob.bin (binary), appending to
                   keep.txt, deleting gone.txt  1: text
  slow_tool        0: Bash `sleep 12; echo slept`  1: text (a run that goes quiet)
  text_only        text "Hello from the scripted model."
  ansi_text        text full of terminal escape sequences
  big_output       0: Bash printing ~2 MB  1: text
  big_text         one ~1 MB text answer
  http401          401 authentication_error "invalid x-api-key"
  http401_expired  401 authentication_error "OAuth token has expired. ..."
  overloaded529    529 overloaded_error
  http429          429 rate_limit_error (retry-after: 1)
  http500          500 api_error
  cut_stream       200 SSE: message_start, a partial text delta, then RST

See Tests/Fixtures/README.md for how the real Claude Code CLI behaves
against each scenario (and CLAUDE_CODE_MAX_RETRIES=0 to skip its retries).
"""

import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

ESC = "\x1b"
BEL = "\x07"

ANSI_TEXT = (
    "Plain start. "
    + ESC + "]0;pwned-title" + BEL
    + "after-osc0 "
    + ESC + "[2J"
    + "after-clear "
    + ESC + "]52;c;Zm9v" + BEL
    + "after-osc52 "
    + ESC + "[10;10H"
    + "after-cup "
    + "carriage\rRETURN "
    + ESC + "[31mred" + ESC + "[0m"
    + " end."
)

BIG_OUTPUT_COMMAND = "head -c 2000000 /dev/zero | tr '\\0' x"

# about 1 MB of text in one answer: one stream-json line of more than 1 MB
BIG_TEXT = "".join("line %06d %s\n" % (i, "y" * 88) for i in range(10000))


def text(t):
    return {"type": "text", "text": t}


def tool(name, inp):
    return {"type": "tool_use", "name": name, "input": inp}


# A scenario is either a list of turns (index = number of tool_result blocks
# in the request, the last turn repeats) or an error/special marker.
SCENARIOS = {
    "write_and_bash": [
        [tool("Write", {"file_path": "/workspace/hello.txt",
                        "content": "hello from ccdeck\n"})],
        [tool("Bash", {"command": "cat /workspace/hello.txt && "
                                  "echo bash-ran > /workspace/bash-ran.txt",
                       "description": "Show hello.txt and write bash-ran.txt"})],
        [text("All done.")],
    ],
    "kernel": [
        [tool("Bash", {"command": "cat /proc/version > /workspace/kernel.txt",
                       "description": "Say which kernel runs this"})],
        [text("Kernel noted.")],
    ],
    "escape": [
        [tool("Bash", {"command": "for f in /root/.claude/.credentials.json /home/*/.claude/.credentials.json "
                                  "\"$CCDECK_PROBE_HOME/.claude/.credentials.json\"; do "
                                  "if cat \"$f\" >/dev/null 2>&1; then echo \"read $f\"; else echo \"no-read $f\"; fi; done "
                                  "> /workspace/escape.txt; "
                                  "for d in /usr /etc /opt /var; do if touch \"$d/ccdeck-escape\" 2>/dev/null; "
                                  "then echo \"wrote $d\"; else echo \"no-write $d\"; fi; done >> /workspace/escape.txt; "
                                  "echo \"run: $(ls -A /run | tr '\\n' ' ')\" >> /workspace/escape.txt; "
                                  "echo \"tmp: $(ls -A /tmp | tr '\\n' ' ')\" >> /workspace/escape.txt; "
                                  "cat /workspace/escape.txt",
                       "description": "Try to leave the sandbox"})],
        [text("Tried.")],
    ],
    "egress": [
        [tool("Bash", {"command": "p=$CCDECK_PROBE_PORT; a=$CCDECK_PROBE_ADDR; "
                                  "c() { r=$(curl -g -s -o /dev/null -w '%{http_code}/%{http_connect}' --max-time 5 \"$@\" 2>/dev/null); "
                                  "echo \"$r $?\"; }; "
                                  "{ echo \"allowed $(c http://localhost:$p/allowed)\"; "
                                  "echo \"denied $(c http://denied.invalid/)\"; "
                                  "echo \"denied-tls $(c https://denied.invalid/)\"; "
                                  "echo \"literal $(c http://[::1]:$p/literal)\"; "
                                  "echo \"redirect $(c -L http://localhost:$p/redirect)\"; "
                                  "echo \"direct $(c --noproxy '*' http://$a:$p/direct)\"; "
                                  "} > /workspace/egress.txt",
                       "description": "Reach hosts on and off the list"})],
        [text("Reached what I could.")],
    ],
    "egress_nc": [
        [tool("Bash", {"command": "p=$CCDECK_PROBE_PORT; a=$CCDECK_PROBE_ADDR; hp=${HTTP_PROXY#http://}; "
                                  "req() { printf 'GET %s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' \"$1\" "
                                  "| nc -w 5 ${hp%:*} ${hp##*:} 2>/dev/null | head -1 | tr -d '\\r'; }; "
                                  "{ echo \"allowed $(req http://localhost:$p/allowed)\"; "
                                  "echo \"denied $(req http://denied.invalid/)\"; "
                                  "d=$(printf 'GET /direct HTTP/1.1\\r\\n\\r\\n' | nc -w 5 $a $p 2>/dev/null | head -1); "
                                  "echo \"direct ${d:-fail}\"; "
                                  "} > /workspace/egress.txt",
                       "description": "Reach hosts on and off the list through the proxy with nc"})],
        [text("Reached what I could.")],
    ],
    "changes": [
        [tool("Bash", {"command": "cd /workspace && echo brand new > added.txt && echo changed >> keep.txt && rm gone.txt "
                                  "&& mkdir -p sub && printf 'x\\000y' > sub/blob.bin",
                       "description": "Add, change and delete files"})],
        [text("Changed things.")],
    ],
    "slow_tool": [
        [tool("Bash", {"command": "sleep 12; echo slept", "description": "Take a while"})],
        [text("Slept.")],
    ],
    "text_only": [
        [text("Hello from the scripted model.")],
    ],
    "ansi_text": [
        [text(ANSI_TEXT)],
    ],
    "big_output": [
        [tool("Bash", {"command": BIG_OUTPUT_COMMAND,
                       "description": "Print about 2 MB of x"})],
        [text("Printed a lot.")],
    ],
    "big_text": [
        [text(BIG_TEXT)],
    ],
    "http401": {"error": (401, "authentication_error", "invalid x-api-key")},
    "http401_expired": {"error": (401, "authentication_error",
                                  "OAuth token has expired. Please obtain a new "
                                  "token or refresh your existing token.")},
    "overloaded529": {"error": (529, "overloaded_error", "Overloaded")},
    "http429": {"error": (429, "rate_limit_error",
                          "This request would exceed your account's rate limit. "
                          "Please try again later."),
                "headers": {"retry-after": "1"}},
    "http500": {"error": (500, "api_error", "Internal server error")},
    "cut_stream": {"cut": True},
}

SIDE_TEXT = "ok"

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def count_tool_results(body):
    n = 0
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    n += 1
    return n


def first_user_texts(body):
    """sha256 and length of each text block of the first user message: how a test checks
    that the prompt arrived whole, without the log holding it."""
    import hashlib
    msgs = body.get("messages") or []
    if not msgs or not isinstance(msgs[0], dict):
        return []
    content = msgs[0].get("content")
    texts = [content] if isinstance(content, str) else [
        b.get("text", "") for b in (content or []) if isinstance(b, dict) and b.get("type") == "text"]
    return [{"sha256": hashlib.sha256(t.encode("utf-8")).hexdigest(), "length": len(t)} for t in texts]


def approx_tokens(raw_len):
    return max(1, raw_len // 4)


def new_id(prefix):
    return prefix + uuid.uuid4().hex[:24]


def sse(event, data):
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data))).encode()


def build_blocks(turn_blocks, workspace="/workspace"):
    """Give tool_use blocks fresh ids; move /workspace to --workspace."""
    out = []
    for b in turn_blocks:
        b = dict(b)
        if b["type"] == "tool_use":
            b["id"] = new_id("toolu_")
            if workspace != "/workspace":
                b["input"] = {k: v.replace("/workspace", workspace)
                              if isinstance(v, str) else v
                              for k, v in b["input"].items()}
        out.append(b)
    return out


def split_chunks(s, n):
    n = max(n, len(s) // 500)   # big answers: at most ~500 deltas
    return [s[i:i + n] for i in range(0, len(s), n)] or [""]


def stream_events(model, blocks, input_tokens):
    msg_id = new_id("msg_")
    has_tool = any(b["type"] == "tool_use" for b in blocks)
    out_tokens = 0
    yield sse("message_start", {
        "type": "message_start",
        "message": {
            "id": msg_id, "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                      "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0},
        },
    })
    yield sse("ping", {"type": "ping"})
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            yield sse("content_block_start", {
                "type": "content_block_start", "index": i,
                "content_block": {"type": "text", "text": ""}})
            for part in split_chunks(b["text"], 16):
                out_tokens += approx_tokens(len(part))
                yield sse("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "text_delta", "text": part}})
        else:
            yield sse("content_block_start", {
                "type": "content_block_start", "index": i,
                "content_block": {"type": "tool_use", "id": b["id"],
                                  "name": b["name"], "input": {}}})
            js = json.dumps(b["input"])
            for part in split_chunks(js, 24):
                out_tokens += approx_tokens(len(part))
                yield sse("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": part}})
        yield sse("content_block_stop", {"type": "content_block_stop", "index": i})
    yield sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use" if has_tool else "end_turn",
                  "stop_sequence": None},
        "usage": {"output_tokens": max(out_tokens, 1)}})
    yield sse("message_stop", {"type": "message_stop"})


def json_message(model, blocks, input_tokens):
    has_tool = any(b["type"] == "tool_use" for b in blocks)
    return {
        "id": new_id("msg_"), "type": "message", "role": "assistant",
        "model": model, "content": blocks,
        "stop_reason": "tool_use" if has_tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 10,
                  "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ccdeck-scripted-model/1"

    # quiet: tests read the request log instead
    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("model_server: " + (fmt % args) + "\n")

    # ---- logging ---------------------------------------------------------
    def record(self, entry):
        path = self.server.request_log
        if not path:
            return
        hdrs = {}
        auth = {"authorization": {"present": False, "length": 0},
                "x-api-key": {"present": False, "length": 0}}
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in auth:
                auth[lk] = {"present": True, "length": len(v)}
                continue
            if lk in ("proxy-authorization", "cookie"):
                v = "<redacted, %d chars>" % len(v)
            hdrs[lk] = v
        line = {"time": round(time.time(), 3), "method": self.command,
                "path": self.path, "headers": hdrs,
                "authorization": auth["authorization"],
                "x_api_key": auth["x-api-key"]}
        line.update(entry)
        with self.server.log_lock:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")

    # ---- responses -------------------------------------------------------
    def send_json(self, status, obj, extra_headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", new_id("req_"))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", new_id("req_"))
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_error_body(self, status, etype, message, headers=None):
        hdrs = {"x-should-retry": "true" if status >= 500 or status == 429 else "false"}
        hdrs.update(headers or {})
        self.send_json(status, {"type": "error",
                                "error": {"type": etype, "message": message},
                                "request_id": new_id("req_")}, hdrs)

    def reset_connection(self):
        """Close with RST, no terminating chunk: an abrupt cut."""
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # ---- methods ---------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and raw:
            import gzip
            raw = gzip.decompress(raw)
        return raw

    def do_HEAD(self):
        self.record({"kind": "other", "status": 200})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.record({"kind": "other", "status": 200})
        self.send_json(200, {})

    def do_POST(self):
        raw = self.read_body()
        path = urlsplit(self.path).path.rstrip("/")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}

        if path == "/v1/messages/count_tokens":
            tokens = approx_tokens(len(raw))
            self.record({"kind": "count_tokens", "status": 200})
            self.send_json(200, {"input_tokens": tokens})
            return
        if path != "/v1/messages":
            self.record({"kind": "other", "status": 200})
            self.send_json(200, {})
            return

        scenario = SCENARIOS[self.server.scenario]
        model = body.get("model") or "claude-scripted"
        stream = bool(body.get("stream"))
        main = bool(body.get("tools"))
        turn = count_tool_results(body)
        entry = {"kind": "main" if main else "side", "turn": turn,
                 "model": model, "stream": stream,
                 "messages": len(body.get("messages") or []),
                 "tools": len(body.get("tools") or []),
                 "scenario": self.server.scenario,
                 "first_user_texts": first_user_texts(body)}
        input_tokens = approx_tokens(len(raw))
        if main and self.server.delay > 0:
            time.sleep(self.server.delay)      # slow first byte

        if isinstance(scenario, dict) and "error" in scenario:
            status, etype, message = scenario["error"]
            entry["status"] = status
            self.record(entry)
            self.send_error_body(status, etype, message, scenario.get("headers"))
            return

        if isinstance(scenario, dict) and scenario.get("cut"):
            if not main:
                blocks = [text(SIDE_TEXT)]
            else:
                entry["status"] = 200
                entry["cut"] = True
                self.record(entry)
                if not stream:
                    # non-streaming fallback: half a JSON body, then RST
                    data = json.dumps(json_message(model, [text("cut")],
                                                   input_tokens)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    time.sleep(0.05)
                    self.reset_connection()
                    return
                self.start_sse()
                events = stream_events(model, [text("This answer will be cut off "
                                                    "in the middle")], input_tokens)
                self.chunk(next(events))       # message_start
                next(events)                   # (skip ping)
                self.chunk(next(events))       # content_block_start
                self.chunk(next(events))       # first text delta
                time.sleep(0.05)
                self.reset_connection()
                return
        elif main:
            blocks = scenario[min(turn, len(scenario) - 1)]
        else:
            blocks = [text(SIDE_TEXT)]

        blocks = build_blocks(blocks, self.server.workspace)
        entry["status"] = 200
        entry["answer"] = [b["type"] if b["type"] == "text" else "tool_use:" + b["name"]
                           for b in blocks]
        self.record(entry)
        if not stream:
            self.send_json(200, json_message(model, blocks, input_tokens))
            return
        self.start_sse()
        for ev in stream_events(model, blocks, input_tokens):
            self.chunk(ev)
        self.end_chunks()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--request-log", default=None)
    ap.add_argument("--workspace", default="/workspace",
                    help="directory that replaces /workspace in tool inputs "
                         "(for running the CLI on the host, not in a container)")
    ap.add_argument("--delay", type=float, default=0.0,
                    help="seconds to wait before answering each main-loop "
                         "request (a slow first byte)")
    ap.add_argument("--verbose", action="store_true",
                    help="log each request line to stderr")
    args = ap.parse_args(argv)

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.scenario = args.scenario
    srv.request_log = args.request_log
    srv.log_lock = threading.Lock()
    srv.verbose = args.verbose
    srv.delay = args.delay
    srv.workspace = args.workspace.rstrip("/") or "/"

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
