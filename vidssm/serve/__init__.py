"""Browser demo of live streaming: a local web app that classifies webcam frames sent over a WebSocket."""

from .app import ServeLimits, create_app, decode_frame
from .server import ServerThread, serve

__all__ = ["ServeLimits", "ServerThread", "create_app", "decode_frame", "serve"]
