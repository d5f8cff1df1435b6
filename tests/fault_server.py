"""A small OpenAI-compatible HTTP server for the serving tests: a deterministic fake model
that can inject faults, or a recording proxy in front of a real server.

Fake model: it reads the questions of a request (``Qj: ...`` lines of the last user message,
or of the last block of a completion prompt) and answers each with a fixed function of the
question text, ``A1: <answer>`` lines, reporting usage as whitespace-separated words.

Faults are decided per request from the request's questions and the number of times these
questions were asked before, so a run is reproducible: the same plan meets the same faults.
Kinds: ``500``, ``429`` (with ``Retry-After``), ``timeout`` (sleeps past the client's
timeout), ``drop`` (closes the connection without a reply), ``badjson`` (a 200 whose body is
not JSON), ``garbage`` (a 200 whose text has no answer label) and ``missing`` (a reply that
omits every second answer). The last two apply only to requests of more than one question
(for one question the model's text *is* its answer).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_Q = re.compile(r"^Q(\d+): (.*)$", re.MULTILINE)


def fake_answer(question: str) -> str:
    """The fake model's answer to a question (a pure function of its text)."""
    return "ans-" + hashlib.sha1(question.encode()).hexdigest()[:8]


def _json_questions(text: str):
    """Questions of the JSON-array format (``[{"id": 1, "question": ...}, ...]``), or None."""
    start = text.find("[{")
    if start < 0:
        return None
    try:
        items = json.loads(text[start:text.rindex("]") + 1])
        return tuple(it["question"] for it in items)
    except (ValueError, KeyError, TypeError):
        return None


def questions_of(body: dict) -> tuple[str, ...]:
    if "messages" in body:
        text = body["messages"][-1]["content"]
    else:
        prompt = body["prompt"]
        text = prompt[prompt.rfind("\n\n") + 2:]
    js = _json_questions(text)
    if js is not None:
        return js
    return tuple(m.group(2) for m in _Q.finditer(text))


def _digest(*parts) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:12], 16)


class FaultServer:
    """Start on 127.0.0.1 at a free port; ``stop()`` (or the context manager) shuts it down.

    Parameters
    ----------
    faults : dict of str to float
        Fault kind -> probability per request (decided by a hash of the questions and the
        attempt number, so deterministic). Only the first ``max_faults_per_call`` requests
        of a call can fail, so a client with more retries always gets through.
    delay_s : float
        Sleep before every reply (to make a run last).
    retry_after : str
        ``Retry-After`` header of 429 replies.
    upstream : str, optional
        Base URL of a real server: requests are forwarded there and its replies recorded
        (no faults, no fake model).
    models : tuple of str
        Ids listed by ``GET /v1/models``.
    models_body : bytes or object, optional
        What ``GET /v1/models`` answers instead of that list (a web page, an empty list).
    """

    def __init__(self, faults=None, *, delay_s=0.0, retry_after="0.2", timeout_sleep_s=1.5,
                 max_faults_per_call=2, upstream=None, models=("fake-a", "fake-b"), seed=0, models_body=None):
        self.faults = dict(faults or {})
        self.delay_s, self.retry_after, self.timeout_sleep_s = delay_s, retry_after, timeout_sleep_s
        self.max_faults = max_faults_per_call
        self.upstream = upstream
        if upstream is not None:
            import httpx
            self._up = httpx.Client(trust_env=False, verify=False, timeout=600)
        self.models = models
        self.models_body = models_body       # a fault of its own: what GET /models answers instead
        self.seed = seed
        self.lock = threading.Lock()
        self.log: list[dict] = []            # one entry per POST: questions, fault, usage, time
        self.seen: dict[tuple, int] = {}
        self.in_flight = self.max_in_flight = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):       # quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except (ConnectionResetError, BrokenPipeError):
                    pass                     # the client went away (a timeout, a killed client)

            def setup(self):
                super().setup()
                # Headers and body go out in two writes: without TCP_NODELAY, Nagle's
                # algorithm and the client's delayed ACK stall each reply by ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, code, payload, headers=()):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if outer.upstream is not None:
                    r = outer._up.get(outer.upstream.rstrip("/") + self.path[self.path.index("/v1") + 3:])
                    return self._send(r.status_code, r.content)
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, outer.models_body if outer.models_body is not None else
                               {"object": "list", "data": [{"id": m, "object": "model"} for m in outer.models]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if self.path not in ("/v1/completions", "/v1/chat/completions"):
                    with outer.lock:
                        outer.log.append({"questions": (), "fault": None, "status": 404, "path": self.path,
                                          "t": time.monotonic()})
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                try:
                    outer._handle(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ behaviour
    def _fault(self, qs: tuple, attempt: int) -> str | None:
        if attempt >= self.max_faults:
            return None
        u = (_digest(self.seed, qs, attempt) % 10 ** 6) / 10 ** 6
        acc = 0.0
        for kind, p in sorted(self.faults.items()):
            if kind in ("garbage", "missing") and len(qs) < 2:
                continue
            acc += p
            if u < acc:
                return kind
        return None

    def _handle(self, h, body):
        qs = questions_of(body)
        with self.lock:
            attempt = self.seen.get(qs, 0)
            self.seen[qs] = attempt + 1
        entry = {"questions": qs, "attempt": attempt, "t": time.monotonic(), "path": h.path, "fault": None,
                 "auth": h.headers.get("Authorization")}
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._reply(h, body, qs, attempt, entry)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _reply(self, h, body, qs, attempt, entry):
        if self.upstream is not None:
            r = self._up.post(self.upstream.rstrip("/") + h.path[h.path.index("/v1") + 3:], json=body)
            entry["status"] = r.status_code
            try:
                entry["usage"] = r.json().get("usage")
            except ValueError:
                entry["usage"] = None
            with self.lock:
                self.log.append(entry)
            h._send(r.status_code, r.content)
            return
        fault = self._fault(qs, attempt)
        entry["fault"] = fault
        with self.lock:
            self.log.append(entry)
        if self.delay_s:
            time.sleep(self.delay_s)
        if fault == "500":
            return h._send(500, {"error": {"message": "injected server error"}})
        if fault == "429":
            return h._send(429, {"error": {"message": "rate limited"}}, [("Retry-After", self.retry_after)])
        if fault == "timeout":
            time.sleep(self.timeout_sleep_s)
        if fault == "drop":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "badjson":
            return h._send(200, b"<html>502 upstream hiccup</html>")
        as_json = "messages" in body and _json_questions(body["messages"][-1]["content"]) is not None
        answers = [f"A{j}: {fake_answer(q)}" for j, q in enumerate(qs, 1)]
        items = [{"id": j, "answer": fake_answer(q)} for j, q in enumerate(qs, 1)]
        if fault == "missing":
            answers, items = answers[::2], items[::2]
        text = "\n".join(answers) if not as_json else "```json\n" + json.dumps(items) + "\n```"
        if fault == "garbage":
            text = "Sorry, I cannot help with that."
        completion_tokens = len(text.split())
        if "messages" in body:
            prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        else:
            prompt_tokens = len(body["prompt"].split())
            # The prompt ends with the "A1:" prefix, so whatever follows it is the answer
            # to Q1: garbage from a completion model starts on a new line (no answer).
            text = text[3:] if text.startswith("A1:") else "\n" + text
            choice = {"index": 0, "text": text, "finish_reason": "stop"}
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        entry["usage"] = usage
        h._send(200, {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": [choice],
                      "usage": usage})

    # ------------------------------------------------------------------ queries
    def requests_for(self, qs: tuple) -> int:
        with self.lock:
            return sum(1 for e in self.log if e["questions"] == tuple(qs))

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        if self.upstream is not None:
            self._up.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
