"""Frame-exact video readers: decode chosen frames of a file to uint8 `[T, H, W, 3]`.

Frame `i` of a file is, by definition, the `i`-th frame a plain sequential decode returns (presentation order,
as PyAV's `container.decode` yields them). Every backend returns exactly those frames at the requested indices:

- `PyAVReader` demuxes the file once (no decoding) into a `FrameIndex` of presentation timestamps and keyframes,
  seeks to the keyframe at or before each requested frame and decodes forward, matching frames by timestamp, never
  by counting. If a seek lands past the target (demuxers that seek by DTS, open GOPs) it retries from an earlier
  keyframe; if a timestamp never comes out of the decoder it falls back to a sequential decode.
- `DecordReader` (default, fast) uses decord's random access only where its own frame index agrees with the
  demuxed one (frame count, keyframe positions, timestamps). Decord maps keyframes in decode order, which lands on
  the wrong frame in files whose B-frames reorder keyframes (e.g. MPEG-4 part 2 with B-frames); such files, and
  any decord error, are read through `PyAVReader` instead.
- `TorchCodecReader` (optional) uses torchcodec's exact seek mode when torchcodec and a system FFmpeg are present.

Frame counts: the header count is used only when it equals the number of demuxed frame packets; otherwise (and for
containers without a count, when packets carry no timestamps, or when a read finds a frame missing) frames are
counted by decoding, keeping only timestamps, so memory stays bounded by the frames asked for.

Orientation: frames come out as displayed. A track's display matrix (what phones write for portrait clips: the
pixels are stored landscape with a 90° rotation to apply) is applied by every backend, as the `ffmpeg` command line,
decord and torchcodec do; `size` is the displayed `(H, W)`. `FrameIndex.rotation` holds the rotation, and decord
is used on a rotated file only without `size` (decord scales before it rotates, which scrambles the frame).

Files: `base.py` (`VideoReadError`, the `VideoReader` interface), `index.py` (`FrameIndex` and its cache),
`rotation.py` (display rotation), one file per backend (`pyav_reader.py`, `decord_reader.py`,
`torchcodec_reader.py`) and `open.py` (`open_video`, `read_frames` by backend name).
"""

from vidssm.data.readers.base import VideoReader, VideoReadError
from vidssm.data.readers.decord_reader import DecordReader
from vidssm.data.readers.index import FrameIndex, frame_index, num_frames, video_fps
from vidssm.data.readers.open import BACKENDS, open_video, read_frames
from vidssm.data.readers.pyav_reader import PyAVReader
from vidssm.data.readers.rotation import display_rotation, rotate_frame
from vidssm.data.readers.torchcodec_reader import TorchCodecReader, torchcodec_available

__all__ = [
    "BACKENDS",
    "DecordReader",
    "FrameIndex",
    "PyAVReader",
    "TorchCodecReader",
    "VideoReadError",
    "VideoReader",
    "display_rotation",
    "frame_index",
    "num_frames",
    "open_video",
    "read_frames",
    "rotate_frame",
    "torchcodec_available",
    "video_fps",
]
