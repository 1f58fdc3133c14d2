"""`TorchCodecReader`: the optional torchcodec backend, in its exact seek mode (needs a system FFmpeg)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from vidssm.data.readers.base import VideoReader, VideoReadError, as_indices, check_file


def torchcodec_available() -> bool:
    """Whether the optional torchcodec backend imports (it needs a system FFmpeg)."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # noqa: BLE001 - missing package or missing FFmpeg libraries
        return False
    return True


class TorchCodecReader(VideoReader):
    """Reader on torchcodec's exact seek mode (optional backend).

    Args:
        path: Video file.
        size: Output `(H, W)` or None (resized after decoding).
        decode_threads: Decoder threads (0: automatic).

    Raises:
        VideoReadError: torchcodec is not usable here, or the file cannot be opened.
    """

    backend = "torchcodec"

    def __init__(self, path: str | os.PathLike, size: tuple[int, int] | None = None, decode_threads: int = 1) -> None:
        super().__init__(path, size, decode_threads)
        self._dec = None
        check_file(self.path)
        try:
            from torchcodec.decoders import VideoDecoder
        except Exception as err:  # noqa: BLE001
            raise VideoReadError(self.path, f"torchcodec backend unavailable ({err}); use 'decord' or 'pyav'") from err
        try:
            self._dec = VideoDecoder(str(self.path), seek_mode="exact", num_ffmpeg_threads=decode_threads)
        except Exception as err:  # noqa: BLE001
            raise VideoReadError(self.path, f"cannot open ({err})") from err
        self._fps = float(self._dec.metadata.average_fps or 0.0)

    @property
    def num_frames(self) -> int:
        return len(self._dec)

    @property
    def fps(self) -> float:
        return self._fps

    def read_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        idx = as_indices(indices, self.num_frames, self.path)
        try:
            frames = self._dec.get_frames_at(idx.tolist()).data  # [T, 3, H, W] uint8
        except Exception as err:  # noqa: BLE001
            raise VideoReadError(self.path, f"decode failed ({err})") from err
        if self.size is not None:
            frames = F.interpolate(frames.float(), size=self.size, mode="bilinear", antialias=True)
            frames = frames.round().clamp(0, 255).to(torch.uint8)
        return frames.permute(0, 2, 3, 1).contiguous().numpy()

    def close(self) -> None:
        self._dec = None
