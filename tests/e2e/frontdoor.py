"""The shop's public address in a server move: a forwarding HTTP proxy that is pointed at
the old host, then at nothing while the switch is under way, then at the new host, as
a DNS name or a front proxy is at cutover. The gateway's notify URLs and the customers'
return links name this address, never a host."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Headers that belong to one connection, not to the request or answer passed on.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length"})  # fmt: skip


class FrontDoor:
    """``http://127.0.0.1:<port>``, forwarding every request to :attr:`target`."""

    def __init__(self) -> None:
        self.target: str | None = None
        self.forwarded: dict[str, int] = {}
        door = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                target = door.target
                if target is None:  # between hosts: the gateway retries
                    self.send_response(503)
                    self.send_header("Retry-After", "5")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                host = urlsplit(target)
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    answer = conn.getresponse()
                    data = answer.read()
                finally:
                    conn.close()
                door.forwarded[target] = door.forwarded.get(target, 0) + 1
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def point_at(self, target: str | None) -> None:
        """Send what arrives from now on to ``target`` (None: answer 503 meanwhile)."""
        self.target = target

    def start(self) -> FrontDoor:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
