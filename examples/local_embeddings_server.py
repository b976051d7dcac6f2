"""A small OpenAI-compatible embeddings server on 127.0.0.1, for the example and the tests.

It serves ``POST /v1/embeddings`` with deterministic vectors (a digest of each text), in
both encodings the ``openai`` client asks for (``float`` and ``base64``), and counts the
requests and inputs it receives. It stands in for the paid API: same protocol, no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def vector(text: str, dims: int) -> list[float]:
    """The embedding of ``text``: ``dims`` float32 values in [0, 1)."""
    digest = hashlib.blake2b(text.encode(), digest_size=4 * dims).digest()
    raw = struct.unpack(f"<{dims}I", digest)
    # round-trip through float32, so that both encodings give exactly these values
    packed = struct.pack(f"<{dims}f", *(v / 2**32 for v in raw))
    return list(struct.unpack(f"<{dims}f", packed))


class EmbeddingsServer:
    """``with EmbeddingsServer() as server:`` serves on ``server.base_url`` until exit."""

    def __init__(self, dims: int = 16, max_inputs: int = 2048) -> None:
        self.dims = dims
        self.max_inputs = max_inputs
        self.requests: list[list[str]] = []  # the inputs of every request, in order
        self._lock = threading.Lock()  # guards requests (one thread per connection)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return 400, {"error": {"message": "input must be a string or a list of strings"}}
        if not texts or len(texts) > self.max_inputs:
            message = f"input must have 1 to {self.max_inputs} items, got {len(texts)}"
            return 400, {"error": {"message": message}}
        with self._lock:
            self.requests.append(list(texts))
        base64_wanted = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            values = vector(text, self.dims)
            embedding: Any = values
            if base64_wanted:
                embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(t.split()) for t in texts)
        return 200, {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                if self.path.rstrip("/") != "/v1/embeddings":
                    status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    try:
                        body = json.loads(self.rfile.read(length) or b"{}")
                    except ValueError:
                        status, payload = 400, {"error": {"message": "body is not JSON"}}
                    else:
                        status, payload = server.answer(body)
                encoded = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests read the counts, not the log

        return Handler
