"""End to end in a real headless Chromium: fake camera (.y4m) → page → WebSocket → model → page.

Uses Debian's `chromium` (`tools/install_test_deps.sh`) driven by Playwright through `executable_path`; no browser
is downloaded. A missing browser fails the test (set VIDSSM_SKIP_BROWSER=1 to skip it, visibly, on purpose).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.system_deps import PACKAGES, require
from vidssm.serve.app import ServeLimits, create_app
from vidssm.serve.server import ServerThread
from vidssm.stream.backends import TorchBackend

from .conftest import tiny_model

FRAMES = 12  # frames each tab sends


def chromium_or_fail() -> str:
    """Debian's chromium; a missing one fails the test with how to install it (`tests/system_deps.py`)."""
    if os.environ.get("VIDSSM_SKIP_BROWSER") == "1" and PACKAGES["chromium"].find() is None:
        pytest.skip("VIDSSM_SKIP_BROWSER=1: browser end-to-end test skipped on purpose")
    return require("chromium")


def write_y4m(path: Path, frames: int = 20, width: int = 320, height: int = 240) -> Path:
    """A 4:2:0 YUV4MPEG2 clip of moving colour blocks (the fake camera loops it)."""
    rng = np.random.default_rng(0)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for t in range(frames):
            y = np.zeros((height, width), np.uint8)
            y[:] = rng.integers(30, 220)
            x0 = (t * 16) % (width - 64)
            y[60:180, x0 : x0 + 64] = 255 - y[0, 0]
            u = np.full((height // 2, width // 2), rng.integers(0, 256), np.uint8)
            v = np.full((height // 2, width // 2), rng.integers(0, 256), np.uint8)
            f.write(b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes())
    return path


def server_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/stats", timeout=10) as resp:
        return json.load(resp)


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def chromium_args(clip: Path) -> list[str]:
    """Headless Chromium with a fake camera that plays `clip`."""
    return [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
    ]


@pytest.mark.slow
def test_browser_tabs_stream_webcam_with_own_state(tmp_path):
    executable = chromium_or_fail()
    from playwright.sync_api import sync_playwright

    args = chromium_args(write_y4m(tmp_path / "camera.y4m"))
    app = create_app(TorchBackend(tiny_model(num_classes=4), labels=["a", "b", "c", "d"]), ServeLimits(max_fps=200))
    with ServerThread(app) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=args, timeout=60_000)
        try:
            context = browser.new_context()
            tabs = [context.new_page() for _ in range(2)]
            for page in tabs:
                page.goto(f"{server.url}/?autostart&frames={FRAMES}", timeout=30_000)
            wait_for(lambda: server_stats(server.url)["sessions"] == 2)
            for page in tabs:
                page.wait_for_function(f"window.vidssmStats.received >= {FRAMES}", timeout=90_000)
            results = [page.evaluate("window.vidssmStats") for page in tabs]
            # a classifier has no predicted frames to show
            assert [page.evaluate("document.getElementById('predicted-box').hidden") for page in tabs] == [True] * 2
            for stats in results:
                assert stats["ready"] and stats["info"]["labels"] == ["a", "b", "c", "d"]
                assert not [e for e in stats["errors"] if e.get("code") != "rate_limited"], stats["errors"]
                preds = stats["predictions"]
                # a prediction for every frame this tab sent, in order, counted by this tab's own state
                assert [p["id"] for p in preds] == stats["sentIds"] == list(range(1, FRAMES + 1))
                assert [p["frame"] for p in preds] == list(range(1, FRAMES + 1))
                for p in preds:
                    probs = [t["prob"] for t in p["top"]]
                    assert len(probs) == 4 and abs(sum(probs) - 1) < 1e-3 and probs == sorted(probs, reverse=True)
                    assert p["rtt"] > 0 and p["step_ms"] > 0
            assert server_stats(server.url)["frames"] == 2 * FRAMES

            # a reset in one tab restarts only that tab's stream
            tabs[0].evaluate("window.vidssmReset()")
            tabs[0].wait_for_function("window.vidssmStats.resets === 1", timeout=30_000)
            per_session = server_stats(server.url)["session_frames"]
            assert sorted(per_session.values()) == [0, FRAMES]

            # closing a tab frees its state on the server
            tabs[0].close()
            wait_for(lambda: server_stats(server.url)["sessions"] == 1)
            tabs[1].close()
            wait_for(lambda: server_stats(server.url)["sessions"] == 0)
        finally:
            browser.close()


@pytest.mark.slow
def test_browser_shows_predicted_next_frames(tmp_path):
    executable = chromium_or_fail()
    from playwright.sync_api import sync_playwright

    from vidssm.models.predictor import FramePredictor

    args = chromium_args(write_y4m(tmp_path / "camera.y4m"))
    app = create_app(TorchBackend(FramePredictor(tiny_model()).eval()), ServeLimits(max_fps=200))
    frames = 6
    with ServerThread(app) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=args, timeout=60_000)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/?autostart&frames={frames}", timeout=30_000)
            page.wait_for_function(f"window.vidssmStats.received >= {frames}", timeout=90_000)
            page.wait_for_function("document.getElementById('predicted').complete", timeout=30_000)
            stats = page.evaluate("window.vidssmStats")
            assert stats["info"]["predicts_frames"] is True
            assert [p["next_frame"] for p in stats["predictions"]] == [True] * frames
            mse = [p["frame_mse"] for p in stats["predictions"]]
            assert mse[0] is None and all(m is not None and 0 <= m <= 1 for m in mse[1:])
            shown = page.evaluate(
                "(() => { const img = document.getElementById('predicted');"
                " return [img.src, img.naturalWidth, img.naturalHeight,"
                " document.getElementById('predicted-box').hidden]; })()"
            )
            # the page displays the newest predicted frame, decoded at the model's resolution
            assert shown == [stats["lastNextFrame"], 32, 32, False]
        finally:
            browser.close()
