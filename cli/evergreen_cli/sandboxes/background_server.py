"""A local HTTP server holding some state, run on a daemon thread (the sandboxes' common plumbing)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class StatefulServer[StateT](ThreadingHTTPServer):
    """A threading HTTP server whose request handlers reach shared state as `self.server.state`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: StateT) -> None:
        super().__init__(address, handler)
        self.state = state


class BackgroundServer[StateT]:
    """A running server: its `url`, its `state`, and `stop()`. Start one with `serve_in_background`."""

    def __init__(self, server: StatefulServer[StateT], thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.state = server.state

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]!s}:{self.port}"

    def wait(self) -> None:
        """Block until the server stops (for a standalone command)."""
        self._thread.join()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve_in_background[StateT](server: StatefulServer[StateT], name: str) -> threading.Thread:
    """Serve on a daemon thread called `name`; returns the running thread."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return thread
