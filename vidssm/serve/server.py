"""Running the web app: a blocking `serve` for the CLI and a `ServerThread` for tests and embedding."""

from __future__ import annotations

import logging
import socket
import threading
import time

from fastapi import FastAPI

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _config(app: FastAPI, log_level: str):
    import uvicorn

    # Messages a little over the app's limit still reach it and get an error reply; far larger ones are cut off by
    # the WebSocket layer before they are buffered.
    max_size = 4 * app.state.limits.max_message_bytes + 65536
    return uvicorn.Config(app, log_level=log_level, ws_max_size=max_size)


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serves `app` until interrupted (Ctrl-C).

    Args:
        app: From `create_app`.
        host: Interface to bind; loopback by default. Anything else exposes the camera page to the network.
        port: TCP port.
        log_level: uvicorn log level.
    """
    import uvicorn

    if host not in LOOPBACK:
        log.warning("binding %s: the page and model are reachable from other machines", host)
    config = _config(app, log_level)
    config.host, config.port = host, port
    uvicorn.Server(config).run()


class ServerThread:
    """Runs `app` on a background thread on a free loopback port.

    Args:
        app: From `create_app`.
        host: Loopback interface to bind.
        log_level: uvicorn log level.

    Attributes:
        url: `http://host:port` once started.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", log_level: str = "warning") -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(_config(app, log_level))
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 20.0) -> ServerThread:
        """Starts serving; waits until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start within {timeout} s")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops serving and waits for the thread."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
