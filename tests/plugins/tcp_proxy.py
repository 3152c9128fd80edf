"""A TCP proxy a test controls, to put in front of Redis (or any server) for the processes the test starts,
so a fault touches only them: ``refuse()`` closes every connection and refuses new ones (a Redis that is
down), ``pause()`` holds every byte in both directions (a Redis that hangs), ``restore()`` lets traffic flow
again. The real server is never touched.

    proxy = TcpProxy(("127.0.0.1", 6379))
    env = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/7"}
    ...
    proxy.close()
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.plugins.servers import free_port


class TcpProxy:
    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.flowing = threading.Event()
        self.flowing.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._listen()

    # --- faults ---------------------------------------------------------------------------------------
    def refuse(self) -> None:
        """Close every connection and refuse new ones (connection refused)."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            listener.close()
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def pause(self) -> None:
        """Accept and keep connections, but move no byte until ``restore()``."""
        self.flowing.clear()

    def restore(self) -> None:
        self.flowing.set()
        with self._lock:
            listening = self._listener is not None
        if not listening:
            self._listen()

    def close(self) -> None:
        self.flowing.set()
        self.refuse()

    # --- plumbing -------------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # refused: the listener was closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
