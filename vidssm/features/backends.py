"""Feature backends: one interface over a vidssm model (a folder or a released `.npz`) and an ONNX export.

A backend turns preprocessed frames into features in one of two modes:

- `stream`: per-frame features, streamed: chunks of frames `[T, 3, H, W]` continue one state
  (`StreamingVideoModel.prefill(..., output=...)`, or the exported step on ONNX Runtime), so memory does not grow
  with the video's length and every feature sees every earlier frame.
- `clip`: per-clip features: clips `[n, L, 3, H, W]`, each from a fresh state (the model's offline forward on one
  clip, or the exported offline graph). A clip's embedding is the mean of its per-frame embeddings (timm's
  `forward_head(pre_logits=True)`), its logits the clip's logits.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidssm.models.base import OUTPUTS, StreamingVideoModel

MODES = ("stream", "clip")


def file_digest(*paths: str | Path) -> str:
    """sha256 of the files' bytes, in order (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _check(output: str, mode: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "clip" and output == "tokens":
        raise ValueError("per-clip features are 'embedding' or 'logits'; tokens are per frame (use mode='stream')")


class FeatureBackend:
    """Common interface of the feature backends.

    Attributes:
        name: What runs (model name or file), for the index.
        weights_hash: sha256 of the weights (files) the features come from.
        config: The model's config (plain data), or {} when unknown (ONNX).
        frame_size: `(H, W)` the model takes.
        output: `"logits"`, `"embedding"` or `"tokens"`.
        mode: `"stream"` or `"clip"`.
        clip_len: Default frames per clip of mode `"clip"` (the model's `frames_per_clip`; 16 for ONNX).
    """

    clip_len: int = 16
    name: str
    weights_hash: str
    config: dict[str, Any]
    frame_size: tuple[int, int]
    output: str
    mode: str

    def start(self) -> None:
        """Starts a new video (a fresh streaming state)."""

    def stream(self, frames: torch.Tensor) -> np.ndarray:
        """The next chunk of a video, `[T, 3, H, W]` float in [0, 1] → one feature per frame `[T, ...]` float32."""
        raise NotImplementedError

    def clips(self, clips: torch.Tensor) -> np.ndarray:
        """Clips `[n, L, 3, H, W]` float in [0, 1], each from a fresh state → one feature per clip `[n, ...]`."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What produced the features: name, output, mode, config and the hash that identifies them."""
        meta = {"model": self.name, "output": self.output, "mode": self.mode, "config": self.config}
        meta["config_hash"] = hashlib.sha256(
            json.dumps({**meta, "weights": self.weights_hash}, sort_keys=True).encode()
        ).hexdigest()[:16]
        return meta


class TorchFeatures(FeatureBackend):
    """A `StreamingVideoModel` run under `torch.inference_mode`.

    Args:
        model: The model (put in eval mode).
        name: Its name in the index.
        weights_hash: sha256 of the weights it was loaded from.
        output: What to extract (`check_output` must accept it: a head-less folder has no logits).
        mode: `"stream"` or `"clip"`.
        device: Where to run.

    Raises:
        ValueError: Bad `output` / `mode`, or an output the loaded weights cannot give.
    """

    def __init__(
        self,
        model: StreamingVideoModel,
        name: str,
        weights_hash: str,
        output: str = "embedding",
        mode: str = "stream",
        device: str | torch.device = "cpu",
    ) -> None:
        from vidssm.export import frame_size

        _check(output, mode)
        model.check_output(output)
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.name, self.weights_hash, self.output, self.mode = name, weights_hash, output, mode
        self.config = model.config_dict()
        self.frame_size = tuple(int(s) for s in frame_size(model))
        self.clip_len = int(model.frames_per_clip)
        self._state = None

    def start(self) -> None:
        self._state = None

    def stream(self, frames: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            out, self._state = self.model.prefill(frames[None].to(self.device), self._state, self.output)
        return (out if self.output == "logits" else out[0]).float().cpu().numpy()

    def clips(self, clips: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            out, _ = self.model.prefill(clips.to(self.device), None, self.output)
        return (out if self.output == "logits" else out.mean(dim=1)).float().cpu().numpy()


class OnnxFeatures(FeatureBackend):
    """An ONNX export on ONNX Runtime: a step graph (`--what step`) streams, an offline graph (`--what offline`)
    extracts per clip. The output kind is the graph's (`vidssm export --output ...`).

    Args:
        path: The `.onnx` file.
        output: Requested output; must be the graph's.
        mode: `"stream"` (needs a step graph) or `"clip"` (needs an offline graph).
        providers: ONNX Runtime execution providers (default CPU).

    Raises:
        FileNotFoundError: No such file.
        ValueError: The graph is not a vidssm export, returns another output, or does not fit `mode`.
    """

    def __init__(
        self, path: str | Path, output: str = "embedding", mode: str = "stream", providers: list[str] | None = None
    ) -> None:
        import onnxruntime as ort

        _check(output, mode)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist")
        self.session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        first_in = self.session.get_inputs()[0]
        graph_output = self.session.get_outputs()[0].name
        kind = {"frame": "stream", "video": "clip"}.get(first_in.name)
        if kind is None or graph_output not in OUTPUTS:
            raise ValueError(
                f"{path} is not a vidssm export (first input 'frame' or 'video', first output one of {OUTPUTS})"
            )
        if kind != mode:
            graph, what = ("offline", "step") if mode == "stream" else ("step", "offline")
            raise ValueError(f"{path} is an {graph} graph; mode={mode!r} needs `vidssm export --what {what}`")
        if graph_output != output:
            raise ValueError(f"{path} returns {graph_output!r}, not {output!r} (export with --output {output})")
        shape = first_in.shape[-2:]
        if not all(isinstance(s, int) for s in shape):
            raise ValueError(f"{path}: the frame size must be fixed, got {first_in.shape}")
        self.frame_size = (int(shape[0]), int(shape[1]))
        self.name, self.output, self.mode, self.config = path.name, output, mode, {}
        self.weights_hash = file_digest(path)
        self.runner = None
        if mode == "stream":
            from vidssm.export.onnx_runtime import OnnxStreamingModel

            self.runner = OnnxStreamingModel(path, providers)
        self._state = None

    def start(self) -> None:
        self._state = self.runner.init_state(1) if self.runner is not None else None

    def stream(self, frames: torch.Tensor) -> np.ndarray:
        outs = []
        for frame in frames.numpy():
            out, self._state = self.runner.step(frame[None], self._state)
            outs.append(out[0])
        return np.stack(outs).astype(np.float32, copy=False)

    def clips(self, clips: torch.Tensor) -> np.ndarray:
        (out,) = self.session.run(None, {"video": np.ascontiguousarray(clips.numpy(), dtype=np.float32)})
        return (out if self.output == "logits" else out.mean(axis=1)).astype(np.float32, copy=False)


def load_feature_backend(
    checkpoint: str | Path | None = None,
    npz: str | Path | None = None,
    onnx: str | Path | None = None,
    output: str = "embedding",
    mode: str = "stream",
    device: str = "cpu",
) -> FeatureBackend:
    """The backend for exactly one of a `save_pretrained` folder, a released TRecViT `.npz` or an ONNX export.

    Raises:
        ValueError: Not exactly one source, or an output / mode the source cannot give.
        FileNotFoundError: The source does not exist.
    """
    if sum(x is not None for x in (checkpoint, npz, onnx)) != 1:
        raise ValueError("give exactly one of checkpoint, npz, onnx")
    if onnx is not None:
        return OnnxFeatures(onnx, output, mode)
    if npz is not None:
        from vidssm.convert import trecvit_from_npz

        if not Path(npz).is_file():
            raise FileNotFoundError(f"checkpoint {npz} does not exist")
        model = trecvit_from_npz(npz)
        return TorchFeatures(model, Path(npz).name, file_digest(npz), output, mode, device)
    import vidssm
    from vidssm.hub import CONFIG_NAME, WEIGHTS_NAME

    folder = Path(checkpoint)
    model = vidssm.from_pretrained(folder)
    return TorchFeatures(
        model, folder.name, file_digest(folder / CONFIG_NAME, folder / WEIGHTS_NAME), output, mode, device
    )
