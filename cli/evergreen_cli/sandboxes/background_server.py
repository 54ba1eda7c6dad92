"""A local HTTP server holding some state, run on a daemon thread (the sandboxes' common plumbing)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class StatefulServer[StateT](ThreadingHTTPServer):
    """A threading HTTP server whose request handlers reach shared state as `self.server.state`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: StateT) -> None:
        super().__init__(address, handler)
        self.state = state


class SandboxHandler(BaseHTTPRequestHandler):
    """A sandbox's request handler: every method goes to `_handle`; requests are recorded, not logged."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: each sandbox records its requests (GET /_sandbox/requests) instead."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        raise NotImplementedError

    def _send(self, status: int, payload: bytes, content_type: str | None, headers: Mapping[str, str] | None) -> None:
        """One answer: status, `headers`, a content type and length unless there is no content, the payload."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and content_type is not None:
            self.wfile.write(payload)


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
