"""Training cost vs clip length on the CPU: TRecViT (three ways) against space-time attention.

One training step is a forward and a backward pass on a random clip (batch 2, width 192, depth 4, 3 heads,
112², 16×16 patches by default). For every clip length `T` and model this measures, in the same run:

- **peak memory**: in a fresh process per clip length, model after model, the peak resident memory of one
  step above the built model's (`VmHWM`, reset before each step; `tools/bench_memory.py` measures the same
  with `ru_maxrss` and a process per point), with glibc's mmap threshold fixed at 64 KiB so that freed
  tensors leave the resident set; robust on a shared machine.
- **FLOPs**: `torch.utils.flop_counter.FlopCounterMode` around each model's timing warm-up step (matmuls,
  convolutions and attention, forward and backward; element-wise ops and the scan are not counted). PyTorch
  has no formula for the CPU attention op, so this registers the same formula it uses for the CUDA ones.
- **wall time**: all models of one `T` built in one process and timed in interleaved rounds (one step of
  each model per round, after one warm-up step each); the median over rounds.

Models (the names of the JSON rows):

- `trecvit`: TRecViT, RG-LRU trained by autograd through every gate op (`temporal={"impl": "autograd"}`).
- `trecvit_lean`: TRecViT with the lean recurrent block (`temporal={"impl": "lean"}`, the default): `lean_rglru` and
  `gated_output` recompute the gates and products in the backward pass.
- `trecvit_lean_recompute`: `trecvit_lean` whose temporal blocks alone are recomputed in the backward pass
  (`temporal={"recompute": True}`): each keeps only its input; the spatial (ViT) blocks keep their activations.
- `trecvit_checkpointed`: `trecvit` with activation checkpointing per layer (`set_grad_checkpointing`).
- `trecvit_lean_checkpointed`: both.
- `joint`: ViViT-style joint space-time attention over all `T (1+N)` tokens (`bench_memory.JointSpaceTime`).
- `divided`: TimeSformer-style divided attention, time then space (`bench_memory.DividedSpaceTime`).

Writes `docs/benchmarks/train_cpu.{md,json,png}` (`--quick`: T = 16 and 64 only, to `train_cpu_quick.*`).

    python tools/bench_train.py [--quick] [--frames 16 32 64 128 256] [--rounds 3] [--threads 1] [--phase memory|time]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import DividedSpaceTime, JointSpaceTime, bench_trecvit, rss_bytes  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
# glibc raises its mmap threshold after large frees, and then serves layer-sized blocks from the heap, whose freed
# pages stay resident: the peak RSS would count memory the allocator holds, not memory the step uses. A fixed
# threshold maps every block over 64 KiB and unmaps it when freed, so RSS follows the live tensors.
POINT_ENV = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
MODELS = (
    "trecvit",
    "trecvit_lean",
    "trecvit_lean_recompute",
    "trecvit_checkpointed",
    "trecvit_lean_checkpointed",
    "joint",
    "divided",
)
QUICK_MODELS = ("trecvit", "trecvit_lean", "trecvit_lean_recompute", "trecvit_checkpointed", "joint", "divided")
GOAL_MODELS = ("trecvit_lean", "trecvit_lean_recompute")
aten = torch.ops.aten


def _cpu_sdpa_flop(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(q_shape, k_shape, v_shape)


def _cpu_sdpa_backward_flop(grad_shape, q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_shape, q_shape, k_shape, v_shape)


# The CPU attention kernels, counted with PyTorch's own formulas for the CUDA ones.
CPU_SDPA_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flop,
}


def build(name: str, frames: int, img_size: int, width: int, depth: int, heads: int) -> nn.Module:
    """The model `name` (see the module docstring) for clips of `frames` frames."""
    torch.manual_seed(0)
    if name in ("joint", "divided"):
        cls = JointSpaceTime if name == "joint" else DividedSpaceTime
        return cls(img_size, 16, width, depth, heads, frames)
    parts = name.split("_")
    temporal = {"impl": "lean" if "lean" in parts else "autograd", "recompute": "recompute" in parts}
    model = bench_trecvit(frames, img_size, width, depth, heads, temporal=temporal)
    model.set_grad_checkpointing(name.endswith("_checkpointed"))
    return model


def train_step(model: nn.Module, video: torch.Tensor) -> None:
    """One forward + backward pass; gradients are dropped afterwards."""
    model(video).logsumexp(-1).sum().backward()
    model.zero_grad(set_to_none=True)


def peak_rss_bytes() -> int:
    """This process's peak resident memory, `VmHWM` of `/proc/self/status`.

    Not `ru_maxrss`: Linux carries that over `execve` from the parent, which here has run the timing rounds.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> None:
    """Resets `VmHWM` to the current resident memory (Linux `clear_refs`), so one process can measure many peaks."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def points(frames: int, batch: int, models: tuple[str, ...], **dims) -> list[dict]:
    """Peak memory of one step of each model in MiB above the built model, one model after the other.

    After a warm-up step of every model on a 2-frame clip, each model is built, the peak is reset to the memory
    in use, one step runs, and the model is freed.
    """
    for name in models:  # one-time allocations (thread pools, kernel caches) before any peak is measured
        train_step(build(name, 2, **dims), torch.rand(batch, 2, 3, dims["img_size"], dims["img_size"]))
    video = torch.rand(batch, frames, 3, dims["img_size"], dims["img_size"])
    rows = []
    for name in models:
        model = build(name, frames, **dims)
        gc.collect()
        reset_peak_rss()
        base = rss_bytes()
        train_step(model, video)
        rows.append(dict(model=name, frames=frames, peak_mib=(peak_rss_bytes() - base) / 2**20))
        del model
        gc.collect()
    return rows


def step_times(frames: int, batch: int, rounds: int, models: tuple[str, ...], **dims) -> dict[str, dict]:
    """Median ms per step of each model, timed in interleaved rounds in this process, and its GFLOPs.

    The FLOPs are counted in each model's untimed warm-up step (not in the memory points: under the counter's
    dispatch mode checkpointed models keep more memory).
    """
    built = {name: build(name, frames, **dims) for name in models}
    video = torch.rand(batch, frames, 3, dims["img_size"], dims["img_size"])
    times: dict[str, list[float]] = {name: [] for name in models}
    gflops = {}
    for name, model in built.items():
        with FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FLOPS) as counter:
            train_step(model, video)  # warm-up
        gflops[name] = counter.get_total_flops() / 1e9
    for _ in range(rounds):
        for name, model in built.items():
            start = time.perf_counter()
            train_step(model, video)
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: dict(step_ms=statistics.median(t), gflops=gflops[name]) for name, t in times.items()}


def slope(rows: list[dict], model: str, key: str) -> float:
    """Log-log slope of `key` against frames between the two longest clips measured."""
    import math

    pts = sorted((r["frames"], r[key]) for r in rows if r["model"] == model)[-2:]
    (t0, v0), (t1, v1) = pts
    return math.log(v1 / v0) / math.log(t1 / t0)


def goals(rows: list[dict], frames: list[int], model: str = "trecvit_lean") -> list[str]:
    """The issue's goals for a lean TRecViT (`model`), each as a line saying met / NOT met with the numbers."""
    by = {(r["model"], r["frames"]): r for r in rows}
    out = []

    def ratio(t: int, key: str) -> float | None:
        a, b = by.get((model, t), {}).get(key), by.get(("joint", t), {}).get(key)
        return None if a is None or b is None else a / b

    for t, limit in ((64, 1.0), (256, 0.5)):
        r = ratio(t, "peak_mib")
        if r is None:
            out.append(f"peak memory ≤ {limit:.1f}× joint at {t} frames: not measured")
        else:
            out.append(
                f"peak memory ≤ {limit:.1f}× joint at {t} frames: {r:.2f}× — {'met' if r <= limit else 'NOT met'}"
            )
    late = [(t, ratio(t, "step_ms")) for t in frames if t >= 64 and ratio(t, "step_ms") is not None]
    if late:
        ok = "met" if all(r < 1 for _, r in late) else "NOT met"
        measured = ", ".join(f"{r:.2f}× at {t}" for t, r in late)
        out.append(f"step time below joint from 64 frames on: {measured} (where timed) — {ok}")
    timed = sorted(r["frames"] for r in rows if r["model"] == model and r.get("step_ms") is not None)
    if len(timed) >= 2:
        s = slope([r for r in rows if r.get("step_ms") is not None], model, "step_ms")
        ok = "met" if s <= 1.15 else "NOT met"
        out.append(
            f"step time linear in T (log-log slope between {timed[-2]} and {timed[-1]} frames ≤ 1.15): {s:.2f} — {ok}"
        )
    return out


def plot(rows: list[dict], path: Path) -> None:
    """Log-log step time and peak memory against frames, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "step_ms", "ms per training step"), (axes[1], "peak_mib", "peak MiB")):
        for model in MODELS:
            pts = sorted((r["frames"], r[key]) for r in rows if r["model"] == model and r.get(key) is not None)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=model)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("frames T")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("One training step (forward + backward) on the CPU vs clip length")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="*", default=[16, 32, 64, 128, 256])
    parser.add_argument(
        "--quick", action="store_true", help="T = 16 and 64, the five models of the issue, 1 round (a few minutes)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared machine, OpenMP regions of 2+ "
        "threads stall when oversubscribed, most for models of many small ops such as TRecViT; 0: PyTorch's default)",
    )
    parser.add_argument("--models", nargs="*", default=None, help="default: all (--quick: all but lean checkpointed)")
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument(
        "--phase", choices=("all", "memory", "time"), default="all", help="measure only memory, or only time+FLOPs"
    )
    parser.add_argument("--json", type=Path, default=None, help="where the rows go (default docs/benchmarks/)")
    parser.add_argument("--command", default=None, help="the command line(s) the .md names (with --render)")
    parser.add_argument("--render", nargs="*", help="merge these JSON files of earlier runs and write the outputs")
    parser.add_argument("--points", type=int, metavar="FRAMES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dims = dict(img_size=args.img_size, width=args.width, depth=args.depth, heads=args.heads)
    if args.threads:
        torch.set_num_threads(args.threads)
    dims_threads = ["--threads", str(args.threads)]
    if args.points:
        for row in points(args.points, args.batch, tuple(args.models), **dims):
            print(json.dumps(row), flush=True)
        return
    if args.render:  # merge the rows of earlier runs (e.g. a memory and a time phase) and rewrite the outputs
        merged: dict[tuple, dict] = {}
        minutes, rounds = 0.0, 0
        for path in args.render:
            saved = json.loads(Path(path).read_text())
            minutes = max(minutes, saved["config"].get("minutes", 0))  # the runs may have run side by side
            if any(r.get("step_ms") is not None for r in saved["rows"]):
                rounds = max(rounds, saved["config"]["rounds"])
            for r in saved["rows"]:
                merged.setdefault((r["model"], r["frames"]), {}).update({k: v for k, v in r.items() if v is not None})
        rows = list(merged.values())
        frames = sorted({r["frames"] for r in rows})
        models = tuple(m for m in MODELS if any(r["model"] == m for r in rows))
        write(args, rows, frames, models, rounds, minutes * 60)
        return
    frames, rounds = ([16, 64], 1) if args.quick else (args.frames, args.rounds)
    models = tuple(args.models or (QUICK_MODELS if args.quick else MODELS))
    rows: list[dict] = []
    started = time.perf_counter()
    for t in frames:
        timed = step_times(t, args.batch, rounds, models, **dims) if args.phase in ("all", "time") else {}
        peaks = {}
        if args.phase in ("all", "memory"):
            cmd = [
                sys.executable,
                __file__,
                "--points",
                str(t),
                f"--batch={args.batch}",
                *dims_threads,
                "--models",
                *models,
            ]
            cmd += [f"--{k.replace('_', '-')}={v}" for k, v in dims.items()]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=POINT_ENV)
            peaks = {r["model"]: r for r in map(json.loads, out.stdout.strip().splitlines()[-len(models) :])}
        for name in models:
            row = dict(model=name, frames=t, peak_mib=None, step_ms=None, gflops=None)
            row.update(timed.get(name, {}))
            row.update(peaks.get(name, {}))
            rows.append(row)
            print(json.dumps(row), flush=True)
        # Written after every clip length, so a long run that is stopped keeps what it measured.
        write(args, rows, sorted({r["frames"] for r in rows}), models, rounds, time.perf_counter() - started)


def write(args: argparse.Namespace, rows: list[dict], frames: list[int], models: tuple, rounds: int, elapsed: float):
    """Prints the table and writes `docs/benchmarks/train_cpu{_quick}.{md,json,png}`."""
    dims = dict(img_size=args.img_size, width=args.width, depth=args.depth, heads=args.heads)
    by = {(r["model"], r["frames"]): r for r in rows}
    table = "| model | frames | peak MiB | × joint | ms / step | × joint | GFLOPs | × joint |\n"
    table += "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for t in frames:
        j = by.get(("joint", t))
        for name in models:
            r = by[name, t]

            def rel(key: str, r=r, j=j) -> str:
                ok = j is not None and r.get(key) is not None and j.get(key) is not None
                return f"{r[key] / j[key]:.2f}×" if ok else "–"

            def num(key: str, spec: str, r=r) -> str:
                return "–" if r.get(key) is None else format(r[key], spec)

            table += (
                f"| {name} | {t} | {num('peak_mib', '.0f')} | {rel('peak_mib')} | {num('step_ms', '.0f')} "
                f"| {rel('step_ms')} | {num('gflops', '.1f')} | {rel('gflops')} |\n"
            )
    goal_lines = [
        f"`{m}`: {line}" for m in GOAL_MODELS if {m, "joint"} <= set(models) for line in goals(rows, frames, m)
    ]
    print(table + "\n".join(goal_lines), flush=True)
    stem = "train_cpu_quick" if args.quick else "train_cpu"
    OUT.mkdir(parents=True, exist_ok=True)
    meta = dict(dims, batch=args.batch, patch=16, rounds=rounds, torch=torch.__version__)
    meta.update(threads=torch.get_num_threads(), minutes=elapsed / 60)
    report = json.dumps(dict(config=meta, rows=rows, goals=goal_lines), indent=2) + "\n"
    if args.json is not None:  # one phase of a split run: rows only, merged later with --render
        args.json.write_text(report)
        return
    (OUT / f"{stem}.json").write_text(report)
    plot(rows, OUT / f"{stem}.png")
    cmd = args.command or "`python tools/bench_train.py" + (" --quick`" if args.quick else "`")
    (OUT / f"{stem}.md").write_text(
        "# Training cost vs clip length (one forward + backward), CPU\n\n"
        f"{cmd} — width {args.width}, depth {args.depth}, {args.heads} heads, 16×16 patches at "
        f"{args.img_size}², batch {args.batch}, float32, torch {torch.__version__}; "
        f"{elapsed / 60:.0f} min. Peak memory: resident memory above the "
        "built model's, one fresh process per clip length. Time: median of "
        f"{rounds} interleaved rounds (one step of every model per round) on a shared 2-core machine, so "
        "compare ratios within a row of frames, not absolute times across runs. GFLOPs: `FlopCounterMode` "
        "(matmuls, convolutions, attention; element-wise ops and the scan not counted).\n\n"
        'Models: `trecvit` (RG-LRU through autograd, `rglru_impl="autograd"`), `trecvit_lean` (the lean RG-LRU '
        'backward, `rglru_impl="lean"`, the default), `trecvit_lean_recompute` (and its temporal blocks '
        "recomputed in the backward pass, `temporal.recompute=True`), `*_checkpointed` (activation checkpointing "
        "per layer), "
        "`joint` (ViViT-style joint space-time attention), `divided` (TimeSformer-style divided attention); "
        "same width, depth, heads, patches.\n\n"
        + table
        + ("\n## Goals (lean TRecViT against the joint model)\n\n" + "".join(f"- {g}\n" for g in goal_lines))
        + f"\n![time and memory vs frames]({stem}.png)\n"
        + "\n## Where the memory goes\n\n"
        "`python tools/profile_train_memory.py` ([train_memory_profile_cpu.md](train_memory_profile_cpu.md)) lists, "
        "for one step at 64 frames, what autograd saves for the backward pass per module and the top allocating "
        "ops, checkpointed and not, for both RG-LRU implementations. Through autograd the RG-LRU layer saves about "
        "nine `[B(1+N), T, 2D]` tensors (gate pre-activations, sigmoids, `a`, `1 - a²`, its square root, products); "
        "the lean block saves its gate input and `h`, and its fused output saves the GeLU input and `h` instead "
        "of the gate and the gated product. What remains is the ViT block of every layer, which alone keeps as much "
        "per token as a layer of the joint model (PyTorch's CPU attention stores no `T²` matrix, so the joint "
        "model's memory is also linear in `T`), plus the temporal block's norms, input maps, convolution and `h`. "
        "With `temporal.recompute=True` each temporal block keeps only its input and rebuilds its activations in "
        "the backward pass a group of streams at a time (`trecvit_lean_recompute`): what is left above the joint "
        "model is that input and TRecViT's CLS token per frame, about 6-9% at 32-256 frames (26% at 16), for "
        "1-30% more step time (+13% FLOPs). Below 1.0× takes recomputing the ViT blocks too (`*_checkpointed`).\n"
    )


if __name__ == "__main__":
    main()
