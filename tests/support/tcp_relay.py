"""A loopback TCP relay in front of a server, byte for byte (so a 200 MB body streams through
it), that can play the server stopped: while `down()`, connections are refused and the open
ones are cut, as when the process is gone; afterwards it listens again on the same port."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

_CHUNK = 1024 * 1024


class TcpRelay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._start_accepting()

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _start_accepting(self) -> None:
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                caller, _ = listener.accept()
            except OSError:
                return  # closed: down, or stopped
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                caller.close()
                continue
            with self._lock:
                self._open |= {caller, server}
            for source, sink in ((caller, server), (server, caller)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                source.shutdown(socket.SHUT_RD)

    def _cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self._cut()
        try:
            yield
        finally:
            self._listener = self._listen(self.port)
            self._start_accepting()

    def close(self) -> None:
        self._cut()


@contextlib.contextmanager
def running_relay(upstream_port: int) -> Iterator[TcpRelay]:
    relay = TcpRelay(upstream_port)
    try:
        yield relay
    finally:
        relay.close()
