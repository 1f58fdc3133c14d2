"""Display rotation: the quarter turn a track's display matrix asks for, read from a decoded frame and applied.

Phones store portrait clips as landscape pixels with a 90° display rotation; every reader returns frames as
displayed, as the `ffmpeg` command line, decord and torchcodec do.
"""

from __future__ import annotations

import av
import numpy as np


def display_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation of a decoded frame, snapped to 0, 90, 180 or 270 degrees.

    FFmpeg attaches the stream's display matrix to every decoded frame; PyAV reads it as `frame.rotation` (phones
    write -90 or 90 for portrait clips). Arbitrary angles are snapped to the nearest quarter turn.
    """
    try:
        angle = float(frame.rotation or 0.0)
    except (AttributeError, TypeError, ValueError):  # no display matrix
        return 0
    return int(round(angle / 90.0)) % 4 * 90


def rotate_frame(image: np.ndarray, rotation: int) -> np.ndarray:
    """Applies a display rotation to a stored frame.

    Args:
        image: Frame as stored, `[H, W, C]`.
        rotation: Counter-clockwise degrees, a multiple of 90 (`display_rotation`).

    Returns:
        The frame as displayed, `[W, H, C]` for quarter turns; contiguous.
    """
    k = (rotation // 90) % 4
    return image if k == 0 else np.ascontiguousarray(np.rot90(image, k))
