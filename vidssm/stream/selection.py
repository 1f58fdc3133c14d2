"""Pick the fastest streaming step that works: ONNX Runtime, then torch.compile, then eager PyTorch.

`select_backend(model, backend="auto")` tries, in order:

1. `onnx`: the model's step graph exported to ONNX (`vidssm.export.export_model(..., what="step")`), cached per
   model and machine under `stream_cache_dir()` as `<key>.onnx` (`artefact_key`), run on ONNX Runtime with all
   graph optimisations (`fast_session_options`). A second start reuses the file; an unreadable one is rebuilt.
2. `compiled`: the step through `torch.compile` (inductor keeps its own on-disk cache of compiled kernels).
3. `eager`: the PyTorch step as is.

A candidate is taken when it builds and its step matches eager on probe frames (`probe`: logits and the whole
state after `PROBE_FRAMES` random frames, `allclose` at `PROBE_ATOL` / `PROBE_RTOL`). Every failure is logged as a
one-line warning naming the reason, and the next candidate is tried. An explicit `backend="onnx"` raises instead of
falling back; `backend="compiled"` falls back to eager with a warning (as `--compile` always did).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import vidssm
from vidssm.machine import cpu_name

from .backends import OnnxBackend, StepBackend, TorchBackend

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "compiled", "eager")
PROBE_FRAMES = 3
PROBE_ATOL = 1e-4
PROBE_RTOL = 1e-4
_SOURCES = ("models", "layers", "export")  # code whose change changes the exported graph


def stream_cache_dir() -> Path:
    """Where exported step graphs are cached: `$VIDSSM_CACHE/stream`, else `$XDG_CACHE_HOME/vidssm/stream`, else
    `~/.cache/vidssm/stream`."""
    root = os.environ.get("VIDSSM_CACHE")
    if root:
        return Path(root).expanduser() / "stream"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vidssm" / "stream"


def _versions() -> dict[str, str]:
    out = {"vidssm": vidssm.__version__, "torch": torch.__version__}
    for name in ("onnxruntime", "onnx", "onnxscript"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = "absent"
    return out


def _source_digest() -> str:
    """Hash of vidssm's model, layer and export code (a changed step exports a different graph)."""
    digest = hashlib.sha256()
    root = Path(vidssm.__file__).parent
    for sub in _SOURCES:
        for path in sorted((root / sub).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def artefact_key(model: nn.Module, what: str = "onnx-step") -> str:
    """Cache key of a model's exported step on this machine: `<class>-<16 hex digits>`.

    The digest covers the model class and config, every weight and buffer (bytes), the vidssm source of models,
    layers and export, the torch / onnx / onnxruntime versions and the machine (OS, architecture, CPU model), so
    a changed model, library or machine never reuses a stale file.

    Args:
        model: A vidssm `StreamingVideoModel`.
        what: The kind of artefact (part of the key).
    """
    digest = hashlib.sha256()
    config = model.config_dict() if hasattr(model, "config_dict") else {}
    meta = {
        "what": what,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": config,
        "versions": _versions(),
        "machine": [platform.system(), platform.release(), platform.machine(), cpu_name()],
        "source": _source_digest(),
    }
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{type(model).__name__.lower()}-{digest.hexdigest()[:16]}"


def writable_cache_dir(folder: Path, from_environment: bool = True) -> Path:
    """`folder`, created, when files can be written into it; else (a file in its place, no permission, a read-only
    disk) a per-user folder in the system's temporary directory, with a warning naming `folder` and how to choose
    another, so that streaming still exports and runs (an unusable cache used to read "ONNX export failed")."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return folder
    except OSError as err:
        fallback = Path(tempfile.gettempdir()) / f"vidssm-stream-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        fallback.mkdir(parents=True, exist_ok=True)
        how = "set VIDSSM_CACHE to a writable folder" if from_environment else "pass a writable cache folder"
        logger.warning("stream cache %s cannot be written (%s; %s): using %s", folder, _first_line(err), how, fallback)
        return fallback


def export_step_cached(model: nn.Module, cache: str | Path | None = None, rebuild: bool = False) -> tuple[Path, bool]:
    """The model's ONNX step graph (logits first), from the cache or exported into it.

    The file is written under a temporary name and renamed into place, so a crash never leaves a half-written
    `<key>.onnx` behind and two processes racing both end with a whole file.

    Args:
        model: A vidssm `StreamingVideoModel` (eval mode).
        cache: The cache folder (default `stream_cache_dir()`).
        rebuild: Export again even when the file exists (a corrupt cache entry).

    Returns:
        `(path, hit)`: the `.onnx` file and whether it came from the cache.

    Raises:
        vidssm.export.ExportError: The exporter failed.
        OSError: Neither the cache folder nor a temporary folder can be written.
    """
    from vidssm.export import export_model

    folder = Path(cache) if cache is not None else stream_cache_dir()
    path = folder / f"{artefact_key(model)}.onnx"
    if path.is_file() and not rebuild:
        return path, True
    folder = writable_cache_dir(folder, cache is None)
    if folder / path.name != path:  # the fallback folder: an earlier run may have exported there
        path = folder / path.name
        if path.is_file() and not rebuild:
            return path, True
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=folder))
    try:
        written = export_model(model, scratch / "step.onnx", "onnx", "step", "logits")
        extra = [p.name for p in scratch.iterdir() if p != written]
        if extra:
            raise OSError(f"the exporter wrote external data {extra}; not cacheable as one file")
        os.replace(written, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path, False


def _state_arrays(state: Any) -> list[np.ndarray]:
    if isinstance(state, list | tuple) and all(isinstance(s, np.ndarray) for s in state):
        return list(state)
    return [leaf.detach().numpy() for leaf in torch.utils._pytree.tree_leaves(state)]


def probe(reference: TorchBackend, candidate: StepBackend, frames: int = PROBE_FRAMES, seed: int = 0) -> str | None:
    """Runs both backends on the same random frames from a fresh state and compares logits and states.

    Args:
        reference: The eager backend.
        candidate: The backend to check (ONNX Runtime states are compared with `flatten_state` of the eager one).
        frames: Frames stepped.
        seed: Seed of the random frames.

    Returns:
        None when every logit and state tensor matches (`allclose`, `PROBE_ATOL` / `PROBE_RTOL`), else the reason.
    """
    from vidssm.export import flatten_state

    gen = torch.Generator().manual_seed(seed)
    ref_state, cand_state = reference.init_state(), candidate.init_state()
    for i in range(frames):
        frame = torch.rand(1, 3, *reference.frame_size, generator=gen)
        ref, ref_state = reference.step(frame, ref_state)
        got, cand_state = candidate.step(frame, cand_state)
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=PROBE_RTOL, atol=PROBE_ATOL):
            diff = np.abs(got - ref).max() if got.shape == ref.shape else f"shape {got.shape} vs {ref.shape}"
            return f"logits of probe frame {i + 1} differ from eager (max |diff| {diff})"
    if isinstance(candidate, OnnxBackend):
        want = [t.numpy() for t in flatten_state(reference.model, ref_state)]
    else:
        want = _state_arrays(ref_state)
    got_state = _state_arrays(cand_state)
    if len(want) != len(got_state):
        return f"state has {len(got_state)} tensors, eager {len(want)}"
    for j, (a, b) in enumerate(zip(got_state, want, strict=True)):
        if a.shape != b.shape or not np.allclose(a, b, rtol=PROBE_RTOL, atol=PROBE_ATOL):
            diff = np.abs(a - b).max() if a.shape == b.shape else f"shape {a.shape} vs {b.shape}"
            return f"state tensor {j} after {frames} probe frames differs from eager (max |diff| {diff})"
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _try_onnx(
    model: nn.Module, eager: TorchBackend, labels: list[str] | None, threads: int | None, cache: str | Path | None
) -> OnnxBackend:
    """Exported (or cached) step graph on ONNX Runtime, checked against eager; raises RuntimeError with the reason."""
    if eager.predicts_frames:
        raise RuntimeError("a next-frame predictor's step has no ONNX export (only class logits do)")
    t0 = time.perf_counter()
    try:
        path, hit = export_step_cached(eager.model, cache)
    except Exception as err:  # noqa: BLE001 - any exporter failure means: try the next backend
        raise RuntimeError(f"ONNX export failed ({_first_line(err)})") from err
    for attempt in (0, 1):
        try:
            backend = OnnxBackend(path, eager.labels, threads=threads)  # the checkpoint's labels, or `labels`
            backend.calibrated_from, backend.calibration_notice = eager.calibrated_from, eager.calibration_notice
            reason = probe(eager, backend)
        except Exception as err:  # noqa: BLE001 - unreadable file / runtime failure
            backend, reason = None, f"cannot run {path} ({_first_line(err)})"
        if reason is None:
            how = f"cached {path}" if hit else f"exported to {path} in {time.perf_counter() - t0:.0f} s"
            backend.why, backend.name = how, eager.name
            return backend
        if not hit or attempt:
            raise RuntimeError(reason)
        logger.warning("cached step graph %s is unusable (%s); exporting it again", path, reason)
        try:
            path, hit = export_step_cached(eager.model, cache, rebuild=True)
        except Exception as err:  # noqa: BLE001
            raise RuntimeError(f"ONNX export failed ({_first_line(err)})") from err
    raise AssertionError("unreachable")


def _try_compiled(model: nn.Module, eager: TorchBackend, labels: list[str] | None) -> TorchBackend:
    """The torch.compile'd step, checked against eager; raises RuntimeError with the reason."""
    t0 = time.perf_counter()
    backend = TorchBackend(model, labels)
    backend._compile(warn=False)
    if not backend.compiled:
        raise RuntimeError(f"torch.compile failed ({backend.compile_error})")
    reason = probe(eager, backend)
    if reason is not None:
        raise RuntimeError(reason)
    backend.why = f"built in {time.perf_counter() - t0:.0f} s"
    return backend


def select_backend(
    model: nn.Module,
    labels: list[str] | None = None,
    backend: str = "auto",
    threads: int | None = None,
    cache: str | Path | None = None,
) -> StepBackend:
    """The step backend for `model`: the requested one, or with `"auto"` the first of ONNX Runtime,
    torch.compile and eager that builds and matches eager on probe frames.

    Args:
        model: A `StreamingVideoModel` or a `FramePredictor` (a predictor has no ONNX step: compiled or eager).
        labels: Class names (default the model's).
        backend: One of `BACKENDS`.
        threads: ONNX Runtime intra-op threads (default one per physical core).
        cache: Folder of the cached step graphs (default `stream_cache_dir()`).

    Returns:
        The backend; its `kind` and `why` (and `describe()`) say what runs and why.

    Raises:
        ValueError: Unknown `backend`, or a model without a trained classifier (a head-less `save_pretrained`
            folder, e.g. from masked-video pretraining): there is nothing to classify frames with.
        RuntimeError: `backend="onnx"` failed (the message says why).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_output = getattr(model, "check_output", None)
    if check_output is not None:  # before any backend is built: each would fail on the first frame
        check_output("logits")
    eager = TorchBackend(model, labels)
    if backend == "eager":
        eager.why = "--backend eager"
        return eager
    if backend == "onnx":
        result = _try_onnx(model, eager, labels, threads, cache)
        result.why = f"--backend onnx; {result.why}"
        return result
    if backend == "compiled":
        try:
            result = _try_compiled(model, eager, labels)
        except RuntimeError as err:
            logger.warning("--backend compiled: %s; running eager", err)
            eager.why = f"--backend compiled failed: {err}"
            return eager
        result.why = f"--backend compiled; {result.why}"
        return result
    skipped = []
    for name, build in (
        ("onnxruntime", lambda: _try_onnx(model, eager, labels, threads, cache)),
        ("compiled", lambda: _try_compiled(model, eager, labels)),
    ):
        try:
            result = build()
        except RuntimeError as err:
            logger.warning("auto backend: %s not used: %s", name, err)
            skipped.append(f"{name}: {err}")
            continue
        result.why = "; ".join(["auto", *(f"not {s}" for s in skipped), result.why])
        return result
    eager.why = "; ".join(["auto", *(f"not {s}" for s in skipped)])
    return eager


__all__ = [
    "BACKENDS",
    "artefact_key",
    "export_step_cached",
    "probe",
    "select_backend",
    "stream_cache_dir",
]
