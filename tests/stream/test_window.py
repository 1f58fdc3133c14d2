"""The overlay window of `vidssm stream --show`, on a real (virtual) X display.

vidssm installs the headless OpenCV wheel, so the window is Tk's. The tests start Debian's `Xvfb`
(`tools/install_test_deps.sh`); a missing Xvfb fails them (set VIDSSM_SKIP_GUI=1 to skip, visibly, on purpose).
Each window scenario runs in its own Python process: Tk keeps its X connection until the process exits, so a
display stopped under a live interpreter would end the test run.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.system_deps import PACKAGES, require
from vidssm.stream import loop, sinks
from vidssm.stream.sinks import TkWindowSink, open_window
from vidssm.stream.sources import open_source
from vidssm.stream.streaming import StreamingRunner


@pytest.fixture
def xdisplay(monkeypatch: pytest.MonkeyPatch):
    """A private virtual X display in `DISPLAY` for the test; the server stops afterwards."""
    if os.environ.get("VIDSSM_SKIP_GUI") == "1" and PACKAGES["xvfb"].find() is None:
        pytest.skip("VIDSSM_SKIP_GUI=1: window tests skipped on purpose")
    xvfb = require("xvfb")  # a missing Xvfb fails with how to install it (`tests/system_deps.py`)
    read, write = os.pipe()
    args = [xvfb, "-displayfd", str(write), "-screen", "0", "640x480x24", "-nolisten", "tcp"]
    proc = subprocess.Popen(args, pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 30)
        number = os.read(read, 64).decode().strip() if ready else ""
        assert number.isdigit(), "Xvfb did not report a display number"
        monkeypatch.setenv("DISPLAY", f":{number}")
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        yield f":{number}"
    finally:
        os.close(read)
        proc.terminate()
        proc.wait(10)


def run_scenario(name: str, *args: str) -> None:
    """Runs `name(*args)` of this module in a fresh Python on the current `DISPLAY`; its failure fails the test."""
    root = Path(__file__).resolve().parents[2]
    code = f"import sys; from tests.stream.test_window import {name}; {name}(*sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"


def headless_opencv() -> None:
    """OpenCV without a GUI, whatever wheel is installed (the default install's case)."""

    def no_gui(*args, **kwargs):
        raise RuntimeError("The function is not implemented (headless OpenCV)")

    sinks.WindowSink = no_gui


def shown_pixel(window: TkWindowSink, x: int, y: int) -> tuple[int, ...]:
    value = window.root.call(window.photo_name, "get", x, y)
    return tuple(int(v) for v in (value.split() if isinstance(value, str) else value))


def press(window: TkWindowSink, key: str) -> None:
    """Types `key` into the window (Tk delivers key events to the window with the keyboard focus)."""
    window.root.focus_force()
    window.root.update()
    window.root.event_generate("<Key>", keysym=key, when="tail")


def scenario_window_shows_frames_and_maps_keys() -> None:
    headless_opencv()
    window = open_window("vidssm test")
    assert isinstance(window, TkWindowSink), window
    try:
        rng = np.random.default_rng(0)
        for _ in range(3):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            assert window.show(image) is None
            assert (window.root.winfo_width(), window.root.winfo_height()) == (64, 48)
            for y, x in zip(rng.integers(0, 48, 20), rng.integers(0, 64, 20), strict=True):
                assert shown_pixel(window, int(x), int(y)) == tuple(image[y, x])  # the exact frame is on screen
        press(window, "r")
        assert window.show(image) == "reset"
        assert window.show(image) is None  # an action is reported once
        press(window, "x")  # other keys do nothing
        assert window.show(image) is None
        press(window, "Escape")
        press(window, "r")  # a later key does not cancel a quit
        assert window.show(image) == "quit"
        window.root.tk.call(window.root.protocol("WM_DELETE_WINDOW"))  # the window manager's close button
        assert window.show(image) == "quit"
    finally:
        window.close()


def scenario_stream_show_opens_a_window_and_q_stops(tmp: str) -> None:
    from tests.stream.conftest import random_frames, tiny_model, write_mp4
    from vidssm.stream.backends import TorchBackend

    headless_opencv()
    clip = write_mp4(Path(tmp) / "clip.mp4", random_frames(12))
    windows: list[TkWindowSink] = []

    def recording_open_window(*args):
        windows.append(open_window(*args))
        return windows[-1]

    loop.open_window = recording_open_window
    seen = []

    def on_prediction(prediction):
        seen.append(prediction.frame)
        if prediction.frame == 3:
            press(windows[0], "q")  # handled at the next frame's `show`

    runner = StreamingRunner(TorchBackend(tiny_model()))
    stats = loop.run_stream(open_source(str(clip)), runner, show=True, on_prediction=on_prediction)
    assert isinstance(windows[0], TkWindowSink), windows
    assert seen == [1, 2, 3] and stats.frames == 4, (seen, stats)  # 12 frames in the clip; stopped by the key


def test_tk_window_shows_frames_and_maps_keys(xdisplay):
    run_scenario("scenario_window_shows_frames_and_maps_keys")


def test_stream_show_opens_a_window_and_q_stops(xdisplay, tmp_path):
    run_scenario("scenario_stream_show_opens_a_window_and_q_stops", str(tmp_path))


def test_no_display_runs_headless(monkeypatch, backend, clip_path, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert open_window() is None
    with caplog.at_level(logging.WARNING):
        stats = loop.run_stream(open_source(str(clip_path)), StreamingRunner(backend), show=True)
    assert stats.frames == 12 and "running headless" in caplog.text
