"""The HTTP side: the telemetry path serves the text exposition, ``/`` a small index page,
``/maps`` (with ``--debug``) the raw map contents."""

from __future__ import annotations

import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .metrics import CONTENT_TYPE

__all__ = ["MetricsServer", "activation_socket", "parse_listen_address"]

log = logging.getLogger(__package__)


def activation_socket(text: str) -> socket.socket:
    """The listening socket systemd passed for ``fd://N`` (socket activation: the Nth of
    the ``LISTEN_FDS`` descriptors from 3 on, meant for this process by ``LISTEN_PID``)."""
    index = text.removeprefix("fd://")
    if not index.isdigit():
        raise ValueError(f"--web.listen-address {text!r}: fd://N takes a number, e.g. fd://0")
    pid, count = os.environ.get("LISTEN_PID", ""), os.environ.get("LISTEN_FDS", "")
    if pid != str(os.getpid()) or not count.isdigit():
        raise ValueError(
            f"--web.listen-address {text!r}: no sockets passed by socket activation "
            "(LISTEN_PID and LISTEN_FDS are not set for this process: start it from a "
            "systemd .socket unit)"
        )
    if int(index) >= int(count):
        raise ValueError(
            f"--web.listen-address {text!r}: only {count} socket(s) passed (fd://0 is the first)"
        )
    sock = socket.socket(fileno=_LISTEN_FDS_START + int(index))
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise ValueError(f"--web.listen-address {text!r}: the passed socket is not a TCP socket")
    return sock


_LISTEN_FDS_START = 3  # sd_listen_fds(3)


def parse_listen_address(text: str) -> tuple[str, int]:
    """``":9435"``, ``"127.0.0.1:9435"``, ``"[::1]:9435"`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(
            f"--web.listen-address {text!r} must be [HOST]:PORT, e.g. :9435 or 127.0.0.1:9435"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, addr: tuple[str, int], handler: Any, family: int, sock: socket.socket | None = None
    ) -> None:
        self.address_family = family
        if sock is None:
            super().__init__(addr, handler)
            return
        super().__init__(addr, handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock  # already bound and listening (socket activation)
        self.server_address = sock.getsockname()


class MetricsServer:
    """Serves an exporter's ``render()`` over HTTP from a background thread.

    ``source`` is anything with ``render() -> bytes`` (and ``debug_maps() -> str`` for
    ``debug``).
    """

    def __init__(
        self,
        source: Any,
        address: str = ":9435",
        telemetry_path: str = "/metrics",
        debug: bool = False,
    ) -> None:
        passed = activation_socket(address) if address.startswith("fd://") else None
        if passed is not None:
            host, port, family = "", 0, passed.family
        else:
            host, port = parse_listen_address(address)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.source = source
        self.telemetry_path = telemetry_path
        self.debug = debug
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("http: " + fmt, *args)

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == outer.telemetry_path:
                    try:
                        body = outer.source.render()
                    except Exception as e:  # never take the server down
                        log.exception("scrape failed")
                        self._send(500, f"scrape failed: {e}\n".encode(), "text/plain")
                        return
                    self._send(200, body, CONTENT_TYPE)
                elif path == "/maps" and outer.debug:
                    self._send(200, outer.source.debug_maps().encode(), "text/plain")
                elif path == "/":
                    page = (
                        "<html><head><title>tinybpf export</title></head><body>"
                        "<h1>tinybpf export</h1>"
                        f'<p><a href="{outer.telemetry_path}">Metrics</a></p>'
                        "</body></html>"
                    )
                    self._send(200, page.encode(), "text/html")
                else:
                    self._send(404, b"not found\n", "text/plain")

            do_HEAD = do_GET

        self.httpd = _Server((host, port), Handler, family, passed)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="tinybpf-export-http", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()
