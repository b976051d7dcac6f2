"""A small OpenAI-compatible embeddings server on 127.0.0.1, for the example and the tests.

It serves ``POST /v1/embeddings`` with deterministic vectors (a digest of each text), in
both encodings the ``openai`` client asks for (``float`` and ``base64``), and keeps the
requests it receives. It stands in for the paid API: same protocol, same kinds of refusal,
no network. Like the real API it answers, for the whole request:

- HTTP 400 when a request has more than ``max_inputs`` inputs (2,048), when one input has
  more than ``max_input_tokens`` tokens (8,192; the message names the input, e.g.
  ``input[3]``), or when all inputs together have more than ``max_request_tokens`` (300,000);
- HTTP 429 with ``Retry-After`` (whole seconds) and ``retry-after-ms`` headers when the
  request would go over ``rpm`` requests or ``tpm`` tokens in the last ``window`` seconds
  (60: per minute). Off by default. Only accepted requests count. A request with more
  tokens than ``tpm`` can never pass: 429 "Request too large", ``x-should-retry: false``.

Tokens are counted by :func:`count_tokens` (whitespace-separated words), which a client
can import to size its batches the same way. Every request is logged, accepted or not,
as ``{"time", "inputs", "tokens", "status", "error"}``: in ``server.log`` and, with
``log_path``, one JSON line each in that file.

Run it on its own (Ctrl-C stops it)::

    python examples/local_embeddings_server.py --port 8000 --rpm 3000 --tpm 1000000 \\
        --log requests.jsonl
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import hashlib
import json
import math
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, Any], dict[str, str]]  # status, body, extra headers


def count_tokens(text: str) -> int:
    """The tokens of ``text`` as this server counts them: its whitespace-separated words."""
    return len(text.split())


def vector(text: str, dims: int) -> list[float]:
    """The embedding of ``text``: ``dims`` float32 values in [0, 1)."""
    digest = hashlib.blake2b(text.encode(), digest_size=4 * dims).digest()
    raw = struct.unpack(f"<{dims}I", digest)
    # round-trip through float32, so that both encodings give exactly these values
    packed = struct.pack(f"<{dims}f", *(v / 2**32 for v in raw))
    return list(struct.unpack(f"<{dims}f", packed))


def _error(message: str, kind: str, code: str | None, param: str | None = None) -> Any:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class _Budget:
    """Requests and tokens accepted in the last ``window`` seconds, counted on arrival.

    Written apart from batche's RateLimit on purpose: the server is the referee that a
    client's pacing is checked against.
    """

    def __init__(self, rpm: int | None, tpm: int | None, window: float) -> None:
        self.rpm, self.tpm, self.window = rpm, tpm, window
        self.accepted: collections.deque[tuple[float, int]] = collections.deque()

    def admit(self, tokens: int, now: float) -> Reply | None:
        """None, with the request counted, or the 429 reply refusing it."""
        while self.accepted and self.accepted[0][0] <= now - self.window:
            self.accepted.popleft()
        used_requests = len(self.accepted)
        used_tokens = sum(t for _, t in self.accepted)
        per = "min" if self.window == 60 else f"{self.window:g} s"
        if self.tpm is not None and tokens > self.tpm:
            message = (
                f"Request too large on tokens per {per} (TPM): Limit {self.tpm}, "
                f"Requested {tokens}. The input or output tokens must be reduced."
            )
            return (
                429,
                _error(message, "tokens", "rate_limit_exceeded"),
                {"x-should-retry": "false"},
            )
        if self.rpm is not None and used_requests + 1 > self.rpm:
            free_at = self.accepted[used_requests - self.rpm][0] + self.window
            what = f"requests per {per} (RPM): Limit {self.rpm}, Used {used_requests}, Requested 1"
            return self._refused(what, "requests", free_at - now)
        if self.tpm is not None and used_tokens + tokens > self.tpm:
            left, free_at = used_tokens, now
            for when, spent in self.accepted:  # the oldest whose expiry makes room
                left, free_at = left - spent, when + self.window
                if left + tokens <= self.tpm:
                    break
            what = (
                f"tokens per {per} (TPM): Limit {self.tpm}, Used {used_tokens}, Requested {tokens}"
            )
            return self._refused(what, "tokens", free_at - now)
        self.accepted.append((now, tokens))
        return None

    def headers(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of the limits in force."""
        found = {}
        if self.rpm is not None:
            found["x-ratelimit-limit-requests"] = str(self.rpm)
            found["x-ratelimit-remaining-requests"] = str(self.rpm - len(self.accepted))
        if self.tpm is not None:
            found["x-ratelimit-limit-tokens"] = str(self.tpm)
            used = sum(t for _, t in self.accepted)
            found["x-ratelimit-remaining-tokens"] = str(self.tpm - used)
        return found

    def _refused(self, what: str, kind: str, wait: float) -> Reply:
        wait_ms = max(1, math.ceil(wait * 1000))
        message = f"Rate limit reached on {what}. Please try again in {wait_ms}ms."
        retry = {"retry-after-ms": str(wait_ms), "Retry-After": str(math.ceil(wait_ms / 1000))}
        return 429, _error(message, kind, "rate_limit_exceeded"), retry


class EmbeddingsServer:
    """``with EmbeddingsServer() as server:`` serves on ``server.base_url`` until exit.

    Args:
        dims: the length of each vector.
        max_inputs: inputs allowed in one request.
        max_input_tokens: tokens allowed in one input.
        max_request_tokens: tokens allowed in all inputs of one request.
        rpm, tpm: requests and tokens accepted per ``window`` seconds (None: no limit).
        window: the seconds ``rpm`` and ``tpm`` apply to (60: per minute).
        log_path: a file that gets one JSON line per request.
        port: the port on 127.0.0.1 (0: a free one).
    """

    def __init__(
        self,
        dims: int = 16,
        max_inputs: int = 2048,
        *,
        max_input_tokens: int = 8192,
        max_request_tokens: int = 300_000,
        rpm: int | None = None,
        tpm: int | None = None,
        window: float = 60.0,
        log_path: str | None = None,
        port: int = 0,
    ) -> None:
        self.dims = dims
        self.max_inputs = max_inputs
        self.max_input_tokens = max_input_tokens
        self.max_request_tokens = max_request_tokens
        self.log_path = log_path
        self.requests: list[list[str]] = []  # the inputs of every accepted request, in order
        self.log: list[dict[str, Any]] = []  # every request: time, inputs, tokens, status
        self._budget = _Budget(rpm, tpm, window)
        # Guards requests, log, the budget and the log file (one thread per connection).
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def inputs(self) -> list[str]:
        with self._lock:
            return [text for request in self.requests for text in request]

    def __enter__(self) -> EmbeddingsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def answer(self, body: dict[str, Any]) -> Reply:
        """The status, body and extra headers of the reply to ``body``, logged."""
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            message = "input must be a string or a list of strings"
            return self._logged(0, 0, (400, _error(message, "invalid_request_error", None), {}))
        counts = [count_tokens(text) for text in texts]
        tokens = sum(counts)
        with self._lock:
            reply = self._refusal(texts, counts) or self._budget.admit(tokens, time.monotonic())
            if reply is None:
                self.requests.append(list(texts))
            headers = self._budget.headers()
        if reply is not None:
            return self._logged(len(texts), tokens, (reply[0], reply[1], {**headers, **reply[2]}))
        base64_wanted = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            values = vector(text, self.dims)
            embedding: Any = values
            if base64_wanted:
                embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return self._logged(len(texts), tokens, (200, payload, headers))

    def _refusal(self, texts: list[str], counts: list[int]) -> Reply | None:
        """The 400 reply for a request the API would refuse whatever the budget, or None."""
        if not texts or len(texts) > self.max_inputs:
            message = f"input must have 1 to {self.max_inputs} items, got {len(texts)}"
        elif max(counts) > self.max_input_tokens:
            at = max(range(len(counts)), key=counts.__getitem__)
            message = (
                f"Invalid 'input[{at}]': {counts[at]} tokens, more than the maximum of "
                f"{self.max_input_tokens} tokens per input. Reduce the length of input[{at}]."
            )
        elif sum(counts) > self.max_request_tokens:
            message = (
                f"Requested {sum(counts)} tokens in {len(texts)} inputs, more than the maximum "
                f"of {self.max_request_tokens} tokens per request."
            )
        else:
            return None
        return 400, _error(message, "invalid_request_error", None, "input"), {}

    def _logged(self, inputs: int, tokens: int, reply: Reply) -> Reply:
        status, payload, _ = reply
        error = payload["error"]["message"] if status != 200 else None
        record = {"time": time.time(), "inputs": inputs, "tokens": tokens, "status": status,
                  "error": error}  # fmt: skip
        with self._lock:
            self.log.append(record)
            if self.log_path is not None:
                with open(self.log_path, "a", encoding="utf-8") as file:
                    file.write(json.dumps(record) + "\n")
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                headers: dict[str, str] = {}
                if self.path.rstrip("/") != "/v1/embeddings":
                    status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    try:
                        request = json.loads(body or b"{}")
                    except ValueError:
                        status, payload = 400, {"error": {"message": "body is not JSON"}}
                    else:
                        status, payload, headers = server.answer(request)
                encoded = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: requests are logged in server.log (and log_path)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="on 127.0.0.1 (0: a free one)")
    parser.add_argument("--dims", type=int, default=16)
    parser.add_argument("--max-inputs", type=int, default=2048)
    parser.add_argument("--max-input-tokens", type=int, default=8192)
    parser.add_argument("--max-request-tokens", type=int, default=300_000)
    parser.add_argument("--rpm", type=int, help="requests per window (default: no limit)")
    parser.add_argument("--tpm", type=int, help="tokens per window (default: no limit)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds (default: 60)")
    parser.add_argument("--log", help="a file to append one JSON line per request to")
    options = parser.parse_args()
    server = EmbeddingsServer(
        options.dims, options.max_inputs, max_input_tokens=options.max_input_tokens,
        max_request_tokens=options.max_request_tokens, rpm=options.rpm, tpm=options.tpm,
        window=options.window, log_path=options.log, port=options.port,
    )  # fmt: skip
    with server:
        print(f"serving on {server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server._thread.join()


if __name__ == "__main__":
    main()
