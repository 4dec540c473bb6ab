"""Run an app on uvicorn: bind first (so port 0 gives a known ephemeral port), then serve until SIGTERM/SIGINT.

On SIGTERM uvicorn stops accepting connections, lets in-flight requests finish (up to
`drain_timeout_s`), then runs the app's shutdown, which stops the micro-batcher.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

DRAIN_TIMEOUT_S = 30


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app, log_level: str = "warning", drain_timeout_s: int = DRAIN_TIMEOUT_S):
    import uvicorn

    config = uvicorn.Config(
        app, log_level=log_level, timeout_graceful_shutdown=drain_timeout_s, access_log=False, lifespan="on"
    )
    return uvicorn.Server(config)


def serve(app, sock: socket.socket, log_level: str = "warning", drain_timeout_s: int = DRAIN_TIMEOUT_S) -> None:
    """Blocks until the server is told to stop (SIGTERM, SIGINT, or `should_exit` from another thread)."""
    make_server(app, log_level, drain_timeout_s).run(sockets=[sock])


@contextlib.contextmanager
def background(app, host: str = "127.0.0.1", start_timeout_s: float = 60, drain_timeout_s: int = 5):
    """Serve `app` on an ephemeral port in a thread (tests, benchmarks); yields the base URL; stops it, bounded."""
    sock = bind(host, 0)
    server = make_server(app, drain_timeout_s=drain_timeout_s)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError(f"server did not start within {start_timeout_s:g} s")
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=drain_timeout_s + 15)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("server did not stop in time")
