"""vidssm's streaming step against DeepMind's own TRecViT (JAX) streaming step, timed in one run on the CPU.

The peer side runs the authors' code: `trecvit.modules` from a local checkout of
https://github.com/google-deepmind/trecvit (`--trecvit-src`, never downloaded here) with recurrentgemma's
`ResidualBlock` RG-LRU caches, one frame per call through `jax.jit`. It lives in its own virtual environment
(`--peer-venv`, default `.venv-peer/`, git-ignored), which this tool creates and fills from PyPI (jax, flax,
recurrentgemma, einops, chex) when it is missing; nothing of the authors' code is copied into vidssm.

One run:

1. The JAX worker (a subprocess in the peer venv) builds TRecViT-Ti with the authors' `trecvit_model.get_model`,
   initialises random parameters, saves them as a flat `.npz` in the released-checkpoint layout, and checks its
   own per-frame stream (the authors' tokenizer, recurrentgemma `ResidualBlock` with caches, the authors'
   `Encoder1DBlock`s and decoder) against the authors' full-clip forward.
2. vidssm loads the same `.npz` (`vidssm.convert.trecvit_from_npz`) and its `step` logits after every frame are
   compared with the JAX stream's on the same frames.
3. Every runtime advances one stream to frame 10 and to frame 500 (state kept at both), then `step` is timed from
   each in interleaved rounds (one block of frames per row per round, rows alternating, the JAX worker's blocks
   included), so all rows share the same machine conditions. Rows: JAX step (jit), vidssm step eager,
   `torch.compile`, ONNX Runtime (`export_model(..., "step")` run by `vidssm.stream.backends.OnnxBackend`), and
   the per-frame floors: timm ViT-Ti eager and compiled, ViT-Ti on ONNX Runtime, and a JAX ViT-Ti (the authors'
   tokenizer and `Encoder1DBlock`s without the temporal blocks, jitted).
4. FLOPs of the step and of ViT-Ti per frame (`torch.utils.flop_counter`) give the floor of step / ViT-Ti.

Writes `docs/benchmarks/peer_stream_cpu.{json,md}` and prints the table.

    git clone https://github.com/google-deepmind/trecvit.git /tmp/trecvit
    python tools/bench_peer_stream.py --trecvit-src /tmp/trecvit --threads 2
    python tools/bench_peer_stream.py --trecvit-src /tmp/trecvit --quick   # 64² frames, few repeats, no files
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
TRECVIT_URL = "https://github.com/google-deepmind/trecvit"
PEER_PACKAGES = ("jax[cpu]", "flax", "recurrentgemma==1.0.1", "einops", "chex", "numpy")
GOALS = {"vs_jax": 1.1, "vs_floor": 1.1}
CHECKPOINTS = (10, 500)
# rows: key -> (label, runtime, kind)
ROWS = {
    "jax_step": ("DeepMind TRecViT-Ti step (jax.jit)", "JAX", "step"),
    "eager_step": ("vidssm step, eager", "PyTorch eager", "step"),
    "compiled_step": ("vidssm step, torch.compile", "torch.compile", "step"),
    "ort_step": ("vidssm step, ONNX Runtime", "ONNX Runtime", "step"),
    "jax_vit": ("JAX ViT-Ti (authors' blocks, jax.jit)", "JAX", "vit"),
    "eager_vit": ("timm ViT-Ti, eager", "PyTorch eager", "vit"),
    "compiled_vit": ("timm ViT-Ti, torch.compile", "torch.compile", "vit"),
    "ort_vit": ("timm ViT-Ti, ONNX Runtime", "ONNX Runtime", "vit"),
}
# What `vidssm stream` / `vidssm serve` run without flags: `--backend auto` picks ONNX Runtime when its exported
# step matches eager (`vidssm.stream.selection`); `model.step` in Python is the eager row.
DEFAULT_STEP = "ort_step"


# --- pure helpers (no JAX, no torch) ------------------------------------------------------------------------


def check_trecvit_src(path: str | os.PathLike | None) -> Path:
    """The authors' checkout, validated.

    Args:
        path: A checkout of google-deepmind/trecvit (the folder holding `trecvit/modules.py`).

    Returns:
        The resolved folder.

    Raises:
        ValueError: No path given, or it holds no `trecvit/modules.py`; the message says where to get it.
    """
    how = f"get it with `git clone {TRECVIT_URL}.git DIR` and pass --trecvit-src DIR"
    if path is None or str(path) == "":
        raise ValueError(f"--trecvit-src is required: a local checkout of DeepMind's TRecViT code ({how})")
    src = Path(path).expanduser().resolve()
    if not (src / "trecvit" / "modules.py").is_file() or not (src / "trecvit" / "trecvit_model.py").is_file():
        raise ValueError(f"--trecvit-src {src} is not a checkout of {TRECVIT_URL} (no trecvit/modules.py); {how}")
    return src


def robust_ms(times_s: list[float]) -> float:
    """Median of the faster half of per-frame times (seconds in, ms out): a slow call is interference."""
    if not times_s:
        raise ValueError("no times")
    fast = sorted(times_s)[: max(len(times_s) // 2, 1)]
    return statistics.median(fast) * 1e3


def summarise(times: dict[str, dict[int, list[list[float]]]]) -> dict[str, dict[int, float]]:
    """Per row and checkpoint: median over rounds of each round's robust ms/frame.

    Args:
        times: `times[row][frame]` is one list of per-frame seconds per round.
    """
    return {
        row: {frame: statistics.median(robust_ms(block) for block in blocks) for frame, blocks in per.items()}
        for row, per in times.items()
    }


def verdicts(ms: dict[str, dict[int, float]], flops_ratio: float | None, frame: int) -> dict[str, dict]:
    """The two goals at checkpoint `frame`.

    1. `vs_jax`: DeepMind's jitted step / vidssm's default streaming step (`DEFAULT_STEP`) >= 1.1.
    2. `vs_floor`: for each runtime with both a step and a ViT-Ti row (torch.compile, ONNX Runtime), the
       time ratio step / ViT-Ti <= 1.1 × the FLOP ratio step / ViT-Ti.
    """
    out: dict[str, dict] = {}
    if "jax_step" in ms and DEFAULT_STEP in ms:
        speedup = ms["jax_step"][frame] / ms[DEFAULT_STEP][frame]
        out["vs_jax"] = dict(speedup=speedup, goal=GOALS["vs_jax"], met=speedup >= GOALS["vs_jax"])
        best = min((r for r in ms if ROWS[r][2] == "step" and r != "jax_step"), key=lambda r: ms[r][frame])
        out["vs_jax_best"] = dict(row=best, speedup=ms["jax_step"][frame] / ms[best][frame])
    for prefix in ("compiled", "ort", "eager", "jax"):
        step, vit = f"{prefix}_step", f"{prefix}_vit"
        if step in ms and vit in ms and flops_ratio:
            ratio = ms[step][frame] / ms[vit][frame]
            entry = dict(time_ratio=ratio, flops_ratio=flops_ratio, over_floor=ratio / flops_ratio)
            if prefix in ("compiled", "ort"):
                entry.update(goal=GOALS["vs_floor"], met=ratio <= GOALS["vs_floor"] * flops_ratio)
            out[f"floor_{prefix}"] = entry
    return out


def _mark(met: bool) -> str:
    return "met" if met else "**NOT met**"


def render_markdown(result: dict) -> str:
    """The results document (`peer_stream_cpu.md`) from the JSON `result` of one run."""
    meta, ms, checks = result["meta"], result["ms_per_frame"], result["checks"]
    frames = [int(f) for f in meta["checkpoints"]]
    lines = [
        "# vidssm vs DeepMind's TRecViT: streaming step on the CPU, one run",
        "",
        f"TRecViT-Ti at {meta['size']}², batch 1, float32, {meta['threads']} thread(s), {meta['cpu']}; "
        f"torch {meta['torch']}, jax {meta.get('jax', '?')}, flax {meta.get('flax', '?')}, onnxruntime "
        f"{meta.get('onnxruntime', '?')}. Generated by `{meta['command']}` in {meta['seconds']:.0f} s.",
        "",
        "This 2-core machine is shared with other jobs running at the same time: absolute times are noise, so every "
        "row is timed in the same run, in interleaved rounds (one block of "
        f"{meta['block']} frames per row per round, {meta['rounds']} rounds, rows alternating, the JAX worker's "
        "blocks included); each entry is the median over rounds of the median of the faster half of a block's "
        "frames. Compare ratios, not milliseconds.",
        "",
        "DeepMind's side is the authors' own code: `trecvit.modules` (their `Tokenizer`, `Encoder1DBlock` and "
        "`ClassificationDecoder`) from a checkout of google-deepmind/trecvit "
        f"(commit `{meta.get('trecvit_commit', '?')}`) with recurrentgemma {meta.get('recurrentgemma', '?')}'s "
        "`ResidualBlock` and its RG-LRU/Conv1D caches, one frame per `jax.jit` call. Their model has no streaming "
        "entry point, so the worker calls those modules per frame with the parameters of their "
        "`trecvit_model.get_model('Ti')` (the per-layer order of their `LRUViT`). vidssm runs the same weights "
        "(the JAX parameters saved as a released-layout `.npz`, loaded with `vidssm.convert.trecvit_from_npz`).",
        "",
        "## Checks",
        "",
        f"- JAX stream vs the authors' full-clip forward ({checks['clip_frames']} frames): max abs error of the "
        f"logits {checks['jax_stream_vs_clip_logits']:.2e}, of the encoded tokens "
        f"{checks['jax_stream_vs_clip_tokens']:.2e} (relative {checks['jax_stream_vs_clip_tokens_rel']:.2e}).",
        f"- vidssm `step` logits vs the JAX stream's, after each of the same {checks['clip_frames']} frames, same "
        f"weights: max abs error {checks['vidssm_vs_jax_logits']:.2e} (logits scale "
        f"{checks['logits_scale']:.2e}); ONNX Runtime step vs JAX: "
        f"{checks.get('ort_vs_jax_logits', float('nan')):.2e}.",
        "- The same long stream on both sides (the same random frames; JAX one jitted step per "
        f"frame, vidssm advanced with {meta.get('advance', 'its eager step, one per frame')}): max abs error of "
        "the logits after frame "
        + ", ".join(f"{f}: {e:.2e}" for f, e in checks.get("vidssm_vs_jax_logits_at", {}).items())
        + ".",
        "",
        "## ms per frame",
        "",
        "| row | runtime | " + " | ".join(f"frame {f}" for f in frames) + f" | vs DeepMind step (frame {frames[-1]}) |",
        "|---|---|" + "---:|" * len(frames) + "---:|",
    ]
    ref = ms.get("jax_step", {}).get(str(frames[-1]))
    for row, per in ms.items():
        label, runtime, _ = ROWS[row]
        cells = " | ".join(f"{per[str(f)]:.1f}" for f in frames)
        rel = f"{ref / per[str(frames[-1])]:.2f}×" if ref else "–"
        lines.append(f"| {label} | {runtime} | {cells} | {rel} |")
    growth = {row: per[str(frames[-1])] / per[str(frames[0])] - 1 for row, per in ms.items() if "step" in row}
    lines += [
        "",
        f"Per-frame cost from frame {frames[0]} to frame {frames[-1]} of the stream: "
        + ", ".join(f"{ROWS[r][0].split(',')[-1].strip()} {100 * g:+.1f}%" for r, g in growth.items())
        + " (state size is constant on both sides).",
        "",
        "## Goals",
        "",
        f"FLOPs of a TRecViT-Ti step / a ViT-Ti frame (`torch.utils.flop_counter`: matmuls, convolutions, "
        f"attention): **{result['flops']['ratio']:.2f}** ({result['flops']['step'] / 1e9:.2f} vs "
        f"{result['flops']['vit'] / 1e9:.2f} GFLOP).",
        "",
    ]
    for frame in frames:
        goals = result["goals"][str(frame)]
        lines.append(f"At frame {frame}:")
        lines.append("")
        if "vs_jax" in goals:
            g = goals["vs_jax"]
            best = goals["vs_jax_best"]
            lines.append(
                f"- DeepMind's jitted step time / vidssm's default streaming step ({ROWS[DEFAULT_STEP][0]}) time: "
                f"{g['speedup']:.2f} "
                f"(goal ≥ {g['goal']}): {_mark(g['met'])}. Fastest vidssm step: {ROWS[best['row']][0]}, "
                f"{best['speedup']:.2f}."
            )
        for prefix, name in (
            ("compiled", "torch.compile"),
            ("ort", "ONNX Runtime"),
            ("eager", "eager"),
            ("jax", "JAX"),
        ):
            g = goals.get(f"floor_{prefix}")
            if g is None:
                continue
            verdict = f" (goal ≤ {g['goal']}× the floor): {_mark(g['met'])}" if "met" in g else " (for reference)"
            lines.append(
                f"- {name}: step / ViT-Ti {g['time_ratio']:.2f} vs FLOP floor {g['flops_ratio']:.2f}, "
                f"{g['over_floor']:.2f}× the floor{verdict}."
            )
        lines.append("")
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(lines)


def write_outputs(result: dict, out_dir: Path) -> tuple[Path, Path]:
    """Writes `peer_stream_cpu.json` and `.md` into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "peer_stream_cpu.json", out_dir / "peer_stream_cpu.md"
    js.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(render_markdown(result))
    return js, md


def format_table(ms: dict[str, dict[int, float]]) -> str:
    """A plain-text table of ms/frame per row and checkpoint, for the terminal."""
    frames = sorted({f for per in ms.values() for f in per})
    head = f"{'row':42s}" + "".join(f"{'frame ' + str(f):>12s}" for f in frames)
    rows = [f"{ROWS[r][0]:42s}" + "".join(f"{per[f]:12.2f}" for f in frames) for r, per in ms.items()]
    return "\n".join([head, *rows])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- peer environment ---------------------------------------------------------------------------------------


def peer_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_peer_venv(venv: Path, install: bool) -> Path:
    """The peer venv's interpreter, creating the venv and pip-installing `PEER_PACKAGES` when they are missing.

    Raises:
        RuntimeError: The venv lacks the packages and `install` is false, or pip failed.
    """
    python = peer_python(venv)
    probe = "import jax, flax, recurrentgemma, einops, chex"
    if python.exists() and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
        return python
    if not install:
        raise RuntimeError(f"{venv} has no working JAX environment ({probe}); drop --no-install to build it")
    log(f"building the JAX environment in {venv} (pip: {' '.join(PEER_PACKAGES)}), a few minutes")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([python, "-m", "pip", "install", "-q", *PEER_PACKAGES])
    if done.returncode:
        raise RuntimeError(f"pip install into {venv} failed (exit {done.returncode})")
    return python


class PeerWorker:
    """The JAX side: this file run with `--worker` by the peer venv's interpreter, one JSON request per line."""

    def __init__(self, python: Path, threads: int) -> None:
        env = dict(os.environ)
        env["JAX_PLATFORMS"] = "cpu"
        if threads == 1:
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            ).strip()
        cmd = [str(python), "-u", str(Path(__file__).resolve()), "--worker", "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def call(self, op: str, **kwargs) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(dict(op=op, **kwargs)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the JAX worker exited (code {self.proc.wait()}) during {op!r}; see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"JAX worker, {op!r}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.call("quit")
            self.proc.wait(timeout=60)


# --- the JAX worker (runs in the peer venv: numpy, jax, flax, recurrentgemma, the authors' trecvit) ------------


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = np.asarray(value)
    return out


class JaxSide:
    """DeepMind's TRecViT (their modules, recurrentgemma caches) as a jitted per-frame step, and a JAX ViT-Ti."""

    def __init__(self, src: str, size: int, frames_per_clip: int, num_classes: int, seed: int, ckpt: str) -> None:
        sys.path.insert(0, src)
        import flax.linen as nn
        import jax
        import jax.numpy as jnp
        from recurrentgemma import common
        from recurrentgemma.jax import modules as rg
        from trecvit import modules, trecvit_model

        self.jax, self.jnp, self.modules = jax, jnp, modules
        self.model = trecvit_model.get_model("Ti", num_frames=frames_per_clip, num_classes=num_classes)
        enc = self.model.encoder
        video = jnp.zeros((1, 2, size, size, 3), jnp.float32)
        self.params = self.model.init(jax.random.PRNGKey(seed), video)["params"]  # eager: no slow XLA compile
        np.savez(ckpt, **_flatten(jax.device_get(self.params)))
        kind = common.TemporalBlockType.RECURRENT
        # the arguments their LRUViT passes to recurrentgemma's ResidualBlock, read from their encoder's fields
        self.temporal = [
            rg.ResidualBlock(
                width=enc.width,
                mlp_expanded_width=enc.mlp_dim,
                num_heads=enc.num_heads,
                lru_width=enc.state_multiplier * enc.width,
                conv1d_temporal_width=enc.conv1d_temporal_width,
                attention_window_size=enc.attention_window_size,
                temporal_block_type=kind,
                scan_type=enc.scan_type,
                final_w_init_variance_scale=2.0 / enc.depth,
                dtype=enc.dtype,
                param_dtype=enc.dtype,
                lru_only_real=enc.only_real,
                min_rad=enc.min_rad,
                use_mlp=enc.use_mlp,
            )
            for _ in range(enc.depth)
        ]
        self.spatial = modules.Encoder1DBlock(
            dtype_mm=enc.dtype, mlp_dim=enc.mlp_dim, num_heads=enc.num_heads, dropout=enc.dropout
        )
        self.norm = nn.LayerNorm()
        self.cls_head = nn.Dense(num_classes)
        self.depth, self.width = enc.depth, enc.width
        self.streams = 1 + (size // 16) ** 2
        self.caches0 = [
            rg.ResidualBlock.init_cache(
                batch_size=self.streams,
                width=enc.width,
                num_heads=enc.num_heads,
                attention_window_size=enc.attention_window_size,
                temporal_block_type=kind,
                dtype=jnp.float32,
                lru_width=enc.state_multiplier * enc.width,
                conv1d_temporal_width=enc.conv1d_temporal_width,
            )
            for _ in range(enc.depth)
        ]
        rep = self.params["decoder"]["pre_logits"]["kernel"].shape[1]
        self.state0 = (self.caches0, jnp.zeros((1, rep), jnp.float32), jnp.zeros((), jnp.int32))
        self.step = jax.jit(self._step)
        self.vit = jax.jit(self._vit)
        self.clip = jax.jit(lambda p, v: self.model.apply({"params": p}, v))
        self.states: dict[int, tuple] = {}
        self.frames: list = []

    def _step(self, params, frame, state):
        """One frame `[1, H, W, 3]` → (logits `[1, classes]`, encoded tokens `[1, 1+N, D]`), new state."""
        jnp, modules = self.jnp, self.modules
        caches, mean, t = state
        p, enc = params, params["encoder"]
        tokens = self.model.tokenizer.apply({"params": p["tokenizer"]}, frame[:, None])["tokens"]  # [1, 1, n, c]
        b, _, n, c = tokens.shape
        x = tokens.reshape(b, n, c)  # "(b t) n c", t = 1
        pos = jnp.full((b * n, 1), t, jnp.int32)  # segment position: 0 on the first frame restarts the stream
        new_caches = []
        for i in range(self.depth):
            xs = modules.transpose_flatten(x, (b, 1, n, c), "(b t) n c")
            xs, cache = self.temporal[i].apply({"params": enc[f"residualblock_{i:02d}"]}, xs, pos, caches[i])
            x = modules.unflatten_untranspose(xs, (b, 1, n, c), "(b t) n c")
            x, _ = self.spatial.apply({"params": enc[f"encoderblock_{i}"]}, x)
            new_caches.append(cache)
        x = self.norm.apply({"params": enc["encoder_norm"]}, x)
        readout = self.model.decoder.apply({"params": p["decoder"]}, x[:, None], b, 1, 1)["pre_logits"][:, 0]
        mean = mean + (readout - mean) / (t + 1).astype(jnp.float32)
        logits = self.cls_head.apply({"params": p["decoder"]["cls_head"]}, mean)
        return (logits, x), (new_caches, mean, t + 1)

    def _vit(self, params, frame):
        """ViT-Ti on one frame with the authors' tokenizer and `Encoder1DBlock`s (no temporal blocks) → logits."""
        p, enc = params, params["encoder"]
        x = self.model.tokenizer.apply({"params": p["tokenizer"]}, frame[:, None])["tokens"][:, 0]
        for i in range(self.depth):
            x, _ = self.spatial.apply({"params": enc[f"encoderblock_{i}"]}, x)
        x = self.norm.apply({"params": enc["encoder_norm"]}, x)
        return self.cls_head.apply({"params": p["decoder"]["cls_head"]}, self._pre(p, x[:, 0]))

    def _pre(self, p, cls):
        k, b = p["decoder"]["pre_logits"]["kernel"], p["decoder"]["pre_logits"]["bias"]
        return self.jnp.tanh(cls @ k + b)

    def check(self, video_path: str, out_path: str) -> dict:
        """Streams the clip in `video_path` (`[1, T, H, W, 3]`), compares with the full-clip forward, saves logits."""
        jnp = self.jnp
        video = jnp.asarray(np.load(video_path)["video"])
        state, logits, tokens = self.state0, [], []
        for t in range(video.shape[1]):
            (lg, tok), state = self.step(self.params, video[:, t], state)
            logits.append(np.asarray(lg))
            tokens.append(np.asarray(tok))
        out = self.clip(self.params, video)
        clip_tokens = np.asarray(out["encoded"])[0]  # [T, 1+N, D]
        stream_tokens = np.concatenate(tokens)  # [T, 1+N, D]
        tok_err = float(np.abs(stream_tokens - clip_tokens).max())
        np.savez(out_path, logits=np.concatenate(logits))
        return dict(
            jax_stream_vs_clip_logits=float(np.abs(logits[-1] - np.asarray(out["logits"])).max()),
            jax_stream_vs_clip_tokens=tok_err,
            jax_stream_vs_clip_tokens_rel=tok_err / float(np.abs(clip_tokens).max()),
        )

    def prepare(self, frames_path: str, checkpoints: list[int]) -> dict:
        """The frames in `frames_path` (`[pool, H, W, 3]`, frame `i` of the stream is `i % pool`), the stream
        advanced to each checkpoint (states kept), everything compiled; returns the logits at each checkpoint."""
        frames = np.load(frames_path)["frames"]
        self.frames = [self.jnp.asarray(f[None]) for f in frames]
        state, seen, logits = self.state0, 0, {}
        for frame in sorted(checkpoints):
            while seen < frame:
                (lg, _), state = self.step(self.params, self.frames[seen % len(frames)], state)
                seen += 1
            self.jax.block_until_ready(state)
            self.states[frame] = state
            logits[str(frame)] = np.asarray(lg).tolist()
        self.jax.block_until_ready(self.vit(self.params, self.frames[0]))
        return dict(logits=logits)

    def time(self, row: str, frame: int, block: int) -> dict:
        """Per-frame seconds of `block` calls: the step continuing from the checkpoint `frame`, or the ViT."""
        jax, times = self.jax, []
        state = self.states[frame]
        for i in range(block):
            x = self.frames[i % len(self.frames)]
            t0 = time.perf_counter()
            if row == "jax_step":
                out, state = self.step(self.params, x, state)
                jax.block_until_ready(out[0])
            else:
                jax.block_until_ready(self.vit(self.params, x))
            times.append(time.perf_counter() - t0)
        return dict(times=times)


def worker_main() -> None:
    """Serves `JaxSide` requests from stdin, one JSON object per line, answers one JSON line each on stdout."""
    import importlib.metadata as md

    side: JaxSide | None = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        try:
            if op == "quit":
                print(json.dumps({}), flush=True)
                return
            if op == "init":
                side = JaxSide(**req)
                reply = {f"{p}": md.version(p) for p in ("jax", "jaxlib", "flax", "recurrentgemma")}
            elif side is None:
                raise RuntimeError("init first")
            else:
                reply = getattr(side, op)(**req)
        except Exception as err:  # noqa: BLE001 - reported to the parent, which raises
            import traceback

            traceback.print_exc(file=sys.stderr)
            reply = dict(error=f"{type(err).__name__}: {err}")
        print(json.dumps(reply), flush=True)


# --- the vidssm side (this venv: torch, vidssm, timm, onnxruntime) -------------------------------------------


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn` (matmuls, convolutions, attention: what `FlopCounterMode` counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


class TorchSide:
    """vidssm's step through its stream backends (eager, torch.compile, ONNX Runtime) and timm ViT-Ti floors.

    Args:
        ckpt: The `.npz` the JAX worker saved (the authors' layout).
        size: Frame side.
        frames_per_clip: As the JAX model's.
        rows: Which of the torch rows of `ROWS` to build.
        workdir: Where the ONNX files go.
    """

    def __init__(
        self, ckpt: Path, size: int, frames_per_clip: int, rows: list[str], workdir: Path, threads: int
    ) -> None:
        import timm
        import torch

        from vidssm.convert import trecvit_from_npz
        from vidssm.stream.backends import OnnxBackend, TorchBackend

        self.torch = torch
        self.model = trecvit_from_npz(ckpt, frames_per_clip=frames_per_clip).eval()
        self.vit = timm.create_model("vit_tiny_patch16_224", img_size=size, num_classes=400).eval()
        self.backends: dict[str, object] = {}
        self.vits: dict[str, Callable] = {}
        self.compile_s: dict[str, float] = {}
        if "eager_step" in rows:
            self.backends["eager_step"] = TorchBackend(self.model)
        if "compiled_step" in rows:
            t0 = time.perf_counter()
            backend = TorchBackend(self.model, compile=True)
            if not backend.compiled:
                raise RuntimeError("torch.compile of the step failed (see the warning above); pass --no-compile")
            self.backends["compiled_step"] = backend
            self.compile_s["step"] = time.perf_counter() - t0
        if "ort_step" in rows:
            from vidssm.export import export_model

            t0 = time.perf_counter()
            path = export_model(self.model, workdir / "step.onnx", "onnx", "step")
            backend = OnnxBackend(path)
            backend.runtime.session = self._ort_session(path, threads)  # the same graph, `threads` intra-op threads
            self.backends["ort_step"] = backend
            self.compile_s["onnx_step_export"] = time.perf_counter() - t0
        frame = torch.rand(1, 3, size, size)
        if "eager_vit" in rows:
            self.vits["eager_vit"] = self._no_grad(self.vit)
        if "compiled_vit" in rows:
            t0 = time.perf_counter()
            compiled = self._no_grad(torch.compile(self.vit, dynamic=False))
            compiled(frame)
            self.vits["compiled_vit"] = compiled
            self.compile_s["vit"] = time.perf_counter() - t0
        if "ort_vit" in rows:
            path = workdir / "vit.onnx"
            with torch.no_grad():
                torch.onnx.export(self.vit, (frame,), str(path), dynamo=True, input_names=["frame"])
            session = self._ort_session(path, threads)
            self.vits["ort_vit"] = lambda x: session.run(None, {"frame": x.numpy()})
        self.states: dict[str, dict[int, object]] = {row: {} for row in self.backends}
        self.frames: list = []

    @staticmethod
    def _ort_session(path: Path, threads: int):
        """A CPU ONNX Runtime session on `threads` intra-op threads (inter-op 1), as torch and XLA get."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _no_grad(self, fn: Callable) -> Callable:
        def run(x):
            with self.torch.inference_mode():
                return fn(x)

        return run

    def check(self, video: np.ndarray, jax_logits: np.ndarray) -> dict:
        """Max abs difference of each step backend's logits after every frame of `video` `[1, T, H, W, 3]` from
        the JAX stream's `jax_logits` `[T, classes]`."""
        frames = self.torch.from_numpy(video).permute(0, 1, 4, 2, 3)  # [1, T, 3, H, W]
        out = {}
        for row, backend in self.backends.items():
            state, logits = backend.init_state(), []
            for t in range(frames.shape[1]):
                lg, state = backend.step(frames[:, t].contiguous(), state)
                logits.append(lg)
            out[row] = float(np.abs(np.concatenate(logits) - jax_logits).max())
        return out

    def prepare(self, frames: np.ndarray, checkpoints: list[int]) -> dict[str, np.ndarray]:
        """The frames (`[pool, H, W, 3]`, frame `i` of the stream is `i % pool`, as the JAX worker's); one stream
        advanced to each checkpoint and its state handed to every step backend; returns the logits at each.

        The stream is advanced with the eager `step` (on the CPU one `step` per frame is cheaper than `prefill`
        chunks, see `docs/benchmarks/stream_cpu.md`), then every backend takes a few warm-up steps from each
        checkpoint state. ONNX Runtime gets the state as its flat graph inputs.
        """
        from vidssm.export.state_io import flatten_state

        torch = self.torch
        self.frames = [torch.from_numpy(f).permute(2, 0, 1)[None].contiguous() for f in frames]
        pool, logits = len(self.frames), {}
        state, seen = self.model.init_state(1), 0
        with torch.inference_mode():
            for frame in sorted(checkpoints):
                while seen < frame:
                    lg, state = self.model.step(self.frames[seen % pool], state)
                    seen += 1
                logits[str(frame)] = lg.numpy()
                for row in self.backends:
                    if row == "ort_step":
                        flat = [t.contiguous().numpy().copy() for t in flatten_state(self.model, state)]
                        self.states[row][frame] = flat
                    else:
                        self.states[row][frame] = state
        for row, backend in self.backends.items():
            for frame in checkpoints:
                s = self.states[row][frame]
                for i in range(2):
                    _, s = backend.step(self.frames[i], s)
        for fn in self.vits.values():
            fn(self.frames[0])
        return logits

    def time(self, row: str, frame: int, block: int) -> list[float]:
        """Per-frame seconds of `block` calls of `row` (a step continuing from checkpoint `frame`, or a ViT)."""
        times = []
        if row in self.backends:
            backend, state = self.backends[row], self.states[row][frame]
            for i in range(block):
                x = self.frames[i % len(self.frames)]
                t0 = time.perf_counter()
                _, state = backend.step(x, state)
                times.append(time.perf_counter() - t0)
        else:
            fn = self.vits[row]
            for i in range(block):
                x = self.frames[i % len(self.frames)]
                t0 = time.perf_counter()
                fn(x)
                times.append(time.perf_counter() - t0)
        return times

    def flops(self) -> dict[str, float]:
        """FLOPs of one step (from a stream past its first frame) and of ViT-Ti on one frame."""
        torch = self.torch
        frame = self.frames[0] if self.frames else torch.rand(1, 3, *self.model.frame_size)
        with torch.inference_mode():
            _, state = self.model.step(frame, self.model.init_state(1))
            step = count_flops(lambda: self.model.step(frame, state))
            vit = count_flops(lambda: self.vit(frame))
        return dict(step=step, vit=vit, ratio=step / vit)


# --- the run -------------------------------------------------------------------------------------------------


def git_commit(src: Path) -> str:
    done = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip()[:12] if done.returncode == 0 else "unknown (not a git checkout)"




def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--trecvit-src",
        help=f"local checkout of {TRECVIT_URL} (the folder with trecvit/); required, never downloaded by this tool",
    )
    parser.add_argument(
        "--peer-venv",
        type=Path,
        default=ROOT / ".venv-peer",
        help="virtual environment of the JAX side (created and pip-installed when missing; "
        "default: .venv-peer/ in the repository, git-ignored)",
    )
    parser.add_argument("--no-install", action="store_true", help="fail instead of building a missing peer venv")
    parser.add_argument("--size", type=int, default=224, help="frame side in pixels (default 224)")
    parser.add_argument("--threads", type=int, default=1, help="threads of torch and of XLA (1 or all cores)")
    parser.add_argument(
        "--checkpoints",
        type=int,
        nargs="+",
        default=list(CHECKPOINTS),
        help="stream positions at which step is timed (default 10 500)",
    )
    parser.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds (default 6)")
    parser.add_argument("--block", type=int, default=20, help="frames per row per round (default 20)")
    parser.add_argument("--clip-frames", type=int, default=8, help="frames of the correctness-check clip")
    parser.add_argument("--frames-per-clip", type=int, default=16, help="the model's frames_per_clip (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the frames")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for peer_stream_cpu.{json,md} (default docs/benchmarks; --quick: none)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 64² frames, checkpoints 10 and 30, 2 rounds of 5 frames, no files unless --out",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # the JAX side, in the peer venv
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses and validates the arguments (exits with a message naming the problem)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        return args
    try:
        args.trecvit_src = check_trecvit_src(args.trecvit_src)
    except ValueError as err:
        parser.error(str(err))
    if args.quick:
        args.size, args.checkpoints, args.rounds, args.block, args.clip_frames = 64, [10, 30], 2, 5, 4
    if args.size % 16:
        parser.error(f"--size must be a multiple of the patch size 16, got {args.size}")
    if args.threads < 1 or args.rounds < 1 or args.block < 1 or min(args.checkpoints) < 1:
        parser.error("--threads, --rounds, --block and --checkpoints must be positive")
    if args.clip_frames > args.frames_per_clip:
        parser.error("--clip-frames must be at most --frames-per-clip (one clip for the full-clip check)")
    args.checkpoints = sorted(set(args.checkpoints))
    if args.out is None and not args.quick:
        args.out = OUT
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    import onnxruntime
    import torch

    from vidssm.machine import cpu_name

    torch.set_num_threads(args.threads)
    rows = list(ROWS)
    if args.no_compile:
        rows = [r for r in rows if not r.startswith("compiled")]
    if args.no_onnx:
        rows = [r for r in rows if not r.startswith("ort")]
    skipped = [ROWS[r][0] for r in ROWS if r not in rows]
    python = ensure_peer_venv(args.peer_venv, not args.no_install)
    worker = PeerWorker(python, args.threads)
    notes = [
        f"The machine has {os.cpu_count()} cores, shared with other jobs during the run; torch and XLA ran "
        f"{args.threads} thread(s), and so did ONNX Runtime (the `OnnxBackend`'s session rebuilt on the same "
        "graph with `intra_op_num_threads` set).",
    ]
    if skipped:
        notes.append(f"Not measured in this run (--no-compile / --no-onnx): {'; '.join(skipped)}.")
    try:
        with tempfile.TemporaryDirectory(prefix="peer_stream_") as tmp:
            work = Path(tmp)
            ckpt, video_path, jax_logits_path = work / "trecvit_ti.npz", work / "clip.npz", work / "jax_logits.npz"
            log("JAX worker: building TRecViT-Ti with the authors' get_model('Ti'), random init, saving .npz")
            versions = worker.call(
                "init",
                src=str(args.trecvit_src),
                size=args.size,
                frames_per_clip=args.frames_per_clip,
                num_classes=400,
                seed=args.seed,
                ckpt=str(ckpt),
            )
            video = np.random.default_rng(args.seed + 1).random(
                (1, args.clip_frames, args.size, args.size, 3), dtype=np.float32
            )
            np.savez(video_path, video=video)
            log("JAX worker: stream vs full-clip forward")
            checks = worker.call("check", video_path=str(video_path), out_path=str(jax_logits_path))
            jax_logits = np.load(jax_logits_path)["logits"]
            log("vidssm: loading the same weights, building eager / torch.compile / ONNX Runtime steps and ViT-Ti")
            side = TorchSide(
                ckpt, args.size, args.frames_per_clip, [r for r in rows if not r.startswith("jax")], work, args.threads
            )
            errs = side.check(video, jax_logits)
            checks.update(
                clip_frames=args.clip_frames,
                logits_scale=float(np.abs(jax_logits).max()),
                vidssm_vs_jax_logits=errs["eager_step"],
            )
            if "compiled_step" in errs:
                checks["compiled_vs_jax_logits"] = errs["compiled_step"]
            if "ort_step" in errs:
                checks["ort_vs_jax_logits"] = errs["ort_step"]
            log(f"checks: {json.dumps(checks)}")
            log(f"advancing every stream to frames {args.checkpoints}")
            frames = np.random.default_rng(args.seed + 2).random((8, args.size, args.size, 3), dtype=np.float32)
            np.savez(work / "frames.npz", frames=frames)
            jax_at = worker.call("prepare", frames_path=str(work / "frames.npz"), checkpoints=args.checkpoints)
            torch_at = side.prepare(frames, args.checkpoints)
            checks["vidssm_vs_jax_logits_at"] = {
                f: float(np.abs(np.asarray(jax_at["logits"][f]) - torch_at[f]).max()) for f in torch_at
            }
            log(f"same stream, logits after frames {args.checkpoints}: {checks['vidssm_vs_jax_logits_at']}")
            flops = side.flops()
            times: dict[str, dict[int, list[list[float]]]] = {r: {f: [] for f in args.checkpoints} for r in rows}
            for rnd in range(args.rounds):
                order = rows if rnd % 2 == 0 else rows[::-1]
                for frame in args.checkpoints:
                    for row in order:
                        if row.startswith("jax"):
                            block = worker.call("time", row=row, frame=frame, block=args.block)["times"]
                        else:
                            block = side.time(row, frame, args.block)
                        times[row][frame].append(block)
                done = summarise({r: {f: b for f, b in per.items() if b} for r, per in times.items()})
                log(
                    f"round {rnd + 1}/{args.rounds}: "
                    + ", ".join(f"{r} {done[r][args.checkpoints[-1]]:.1f}" for r in rows)
                )
            compile_s = side.compile_s
    finally:
        worker.close()
    ms = summarise(times)
    notes.append(
        f"Load average (1 min) on the {os.cpu_count()} cores: {load_start:.1f} at the start of the run, "
        f"{os.getloadavg()[0]:.1f} at the end (other helpers' jobs): every row ran under that contention."
    )
    goals = {str(f): verdicts(ms, flops["ratio"], f) for f in args.checkpoints}
    command = (
        "python tools/bench_peer_stream.py --trecvit-src DIR"
        + (f" --threads {args.threads}" if args.threads != 1 else "")
        + (" --quick" if args.quick else "")
    )
    result = dict(
        meta=dict(
            size=args.size,
            threads=args.threads,
            checkpoints=args.checkpoints,
            rounds=args.rounds,
            block=args.block,
            cpu=cpu_name(),
            cores=os.cpu_count(),
            torch=torch.__version__,
            onnxruntime=onnxruntime.__version__,
            trecvit_commit=git_commit(args.trecvit_src),
            command=command,
            seconds=time.perf_counter() - start,
            compile_seconds=compile_s,
            advance="its eager step, one per frame",
            **versions,
        ),
        checks=checks,
        flops=flops,
        ms_per_frame={r: {str(f): v for f, v in per.items()} for r, per in ms.items()},
        goals=goals,
        notes=notes,
    )
    print(format_table(ms))
    for frame, g in goals.items():
        print(f"frame {frame}: " + json.dumps(g))
    if args.out is not None:
        js, md = write_outputs(result, args.out)
        log(f"wrote {js} and {md}")
    return result


if __name__ == "__main__":
    if "--worker" in sys.argv[1:]:
        worker_main()
    else:
        main()
