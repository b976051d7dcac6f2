"""A TCP proxy on loopback for fault tests: between a client and a server, it passes,
swallows, delays, resets or refuses connections, as the test switches it at run time."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Any

MODES = ("pass", "blackhole", "reset", "refuse", "latency")
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a RST


class Proxy:
    """Listens on 127.0.0.1 (``port``; a free one by default) and forwards to ``target``.

    Modes, switched by ``mode(...)`` from any thread (it returns once applied):

    - ``"pass"``: bytes go through both ways;
    - ``"blackhole"``: connections are accepted, and whatever either side sends vanishes
      (a server that stopped answering, or a network that drops everything);
    - ``"reset"``: every open connection and every new one is reset (RST);
    - ``"refuse"``: nothing listens (connections are refused); open ones are reset;
    - ``"latency"``: bytes go through, each chunk ``latency`` seconds after it arrived.

    Runs its own event loop in a background thread, loopback only. It stops on ``stop()``
    (or leaving ``with``), and after ``lifetime`` seconds at the latest. ``connections``
    counts the connections accepted, ``received`` the bytes clients sent, and
    ``wait_for(data)`` waits until clients have sent ``data`` (a command's name).
    """

    def __init__(self, target: tuple[str, int], *, port: int = 0, lifetime: float = 300.0) -> None:
        if target[0] not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"Proxy: loopback targets only, got {target[0]!r}")
        self.target = target
        self.port = port
        self.lifetime = lifetime
        self.connections = 0
        self._sent = bytearray()  # what clients sent
        self._sending = threading.Condition()  # guards _sent; notified when it grows
        self._mode = "pass"
        self._latency = 0.0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._links: set[_Link] = set()
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)
        self._ready = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def received(self) -> int:
        """The bytes clients have sent."""
        with self._sending:
            return len(self._sent)

    def wait_for(self, data: bytes, start: int = 0, timeout: float = 60.0) -> bool:
        """Wait until clients have sent ``data``, from offset ``start`` of all they sent
        (``received`` before the action awaited); False after ``timeout`` seconds."""
        with self._sending:
            return self._sending.wait_for(lambda: self._sent.find(data, start) >= 0, timeout)

    def start(self) -> Proxy:
        self._thread.start()
        self._ready.wait()
        self._call(self._listen())
        self._loop.call_soon_threadsafe(self._loop.call_later, self.lifetime, self._expire)
        return self

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mode(self, mode: str, latency: float = 0.0) -> None:
        """Switch to ``mode`` (see the class); returns once it is in force."""
        if mode not in MODES:
            raise ValueError(f"Proxy.mode: mode must be one of {MODES}, got {mode!r}")
        self._call(self._switch(mode, latency))

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    # -- in the proxy's thread -------------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop
        loop.call_soon(self._ready.set)
        loop.run_forever()
        loop.run_until_complete(_cancel_the_rest())  # as asyncio.run ends: nothing pending
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def _expire(self) -> None:
        self._loop.create_task(self._shutdown()).add_done_callback(lambda _: self._loop.stop())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: str, latency: float) -> None:
        self._mode, self._latency = mode, latency
        if mode in ("reset", "refuse"):
            for link in list(self._links):
                link.reset()
        if mode == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            link.reset()
        await asyncio.gather(*(link.done for link in list(self._links)))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._mode == "reset":
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)  # the server is down: as the server itself would refuse
            return
        link = _Link(self, (reader, writer), (up_reader, up_writer))
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, proxy: Proxy, client: Any, server: Any) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.done = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        try:
            await asyncio.gather(
                self._pump(self.client[0], self.server[1], upstream=True),
                self._pump(self.server[0], self.client[1], upstream=False),
            )
        finally:
            for _, writer in (self.client, self.server):
                writer.close()
            if not self.done.done():
                self.done.set_result(None)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        """Read one side and write the other, chunk by chunk, as the mode says."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = loop.create_task(self._send(queue, writer))
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except OSError:
                    data = b""
                if not data:
                    break
                if upstream:
                    with self.proxy._sending:
                        self.proxy._sent += data
                        self.proxy._sending.notify_all()
                mode = self.proxy._mode
                if mode == "blackhole":
                    continue
                delay = self.proxy._latency if mode == "latency" else 0.0
                queue.put_nowait((loop.time() + delay, data))
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self.reset()  # one side went away: so does the other

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]], writer: Any) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())  # the simulated latency itself
            if self.proxy._mode != "blackhole":
                writer.write(data)
                try:
                    await writer.drain()
                except OSError:
                    return

    def reset(self) -> None:
        for _, writer in (self.client, self.server):
            _reset(writer)


async def _cancel_the_rest() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST, not a FIN: the peer sees "connection reset"."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    writer.transport.abort()
