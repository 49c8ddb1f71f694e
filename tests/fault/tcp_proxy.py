"""A userspace TCP proxy on loopback that can stall or reset every connection through it.

It stands in for a network partition between one worker and Redis without network
namespaces (which need root and iproute2): ``stall()`` stops forwarding in both directions
while keeping the sockets open (a dropped link: no FIN, no RST, bytes just stop),
``heal()`` forwards again, ``reset()`` aborts every connection with an RST (``SO_LINGER 0``).
"""

from __future__ import annotations

import select
import socket
import struct
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; one thread, select-based, stopped by ``close``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port: int = self.listener.getsockname()[1]
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stalled = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tcp-proxy")
        self._thread.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stall(self) -> None:
        self._stalled.set()

    def heal(self) -> None:
        self._stalled.clear()

    def reset(self) -> None:
        """Abort every open connection with an RST, as a middlebox dropping state does."""
        with self._lock:
            socks = list(self._pairs)
            self._pairs.clear()
        linger = struct.pack("ii", 1, 0)
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self.reset()
        self.listener.close()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._pairs[client] = upstream
            self._pairs[upstream] = client

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            peer = self._pairs.pop(s, None)
            if peer is not None:
                self._pairs.pop(peer, None)
        for x in (s, peer):
            if x is not None:
                try:
                    x.close()
                except OSError:
                    pass

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                socks = list(self._pairs)
            readable = [self.listener] + ([] if self._stalled.is_set() else socks)
            try:
                ready, _, _ = select.select(readable, [], [], 0.05)
            except (OSError, ValueError):
                continue  # a socket was closed by reset(): look again
            for s in ready:
                if s is self.listener:
                    self._accept()
                    continue
                with self._lock:
                    peer = self._pairs.get(s)
                if peer is None:
                    continue
                try:
                    data = s.recv(65536)
                    if not data:
                        self._drop(s)
                        continue
                    peer.sendall(data)
                except OSError:
                    self._drop(s)
