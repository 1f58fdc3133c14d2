"""Benchmark `linear_scan` on the CPU against a plain PyTorch loop and the naive spec.

Times forward and forward+backward (with autograd) for each shape and decay kind, prints a
table and writes `docs/benchmarks/scan_cpu.json` and `docs/benchmarks/scan_cpu.md`.

    python tools/bench_scan.py            # full run, writes docs/benchmarks/
    python tools/bench_scan.py --quick    # short run, for a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils import benchmark
from tqdm import tqdm
from vidssm.kernels import linear_scan, naive_linear_scan
from vidssm.kernels.linear_scan import choose_scan_form

ROOT = Path(__file__).resolve().parents[1]
SHAPES: tuple[tuple[int, int, int], ...] = (  # (B*N, T, D)
    (1024, 16, 192),
    (256, 32, 384),
    (64, 8, 768),
    (8, 512, 256),
    (1, 4096, 256),
)
KINDS = ("real_gated", "real_bcast", "complex_bcast")
PASSES = ("fwd", "fwd+bwd")

ScanFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def plain_loop_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: the obvious PyTorch loop, differentiated by autograd.

    Args:
        a: Decay `[B, T, D]` or `[D]`.
        b: Input `[B, T, D]`.

    Returns:
        `h` `[B, T, D]` and the last state `[B, D]`.
    """
    h = torch.zeros_like(b[:, 0])
    steps = []
    for t in range(b.shape[1]):
        a_t = a[:, t] if a.ndim == 3 else a
        h = a_t * h + b[:, t]
        steps.append(h)
    return torch.stack(steps, dim=1), h


def unbind_loop_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A second, stronger baseline: the same loop over `unbind` views.

    Indexing `b[:, t]` makes autograd's backward write a zero-filled `[B, T, D]` gradient per step
    (quadratic in `T`); `unbind` has a single backward node. Shows how much of the speed-up over
    `plain_loop_scan` is the fused forward and hand-written backward rather than that artefact.

    Args:
        a: Decay `[B, T, D]` or `[D]`.
        b: Input `[B, T, D]`.

    Returns:
        `h` `[B, T, D]` and the last state `[B, D]`.
    """
    h = torch.zeros_like(b[:, 0])
    a_steps = a.unbind(1) if a.ndim == 3 else [a] * b.shape[1]
    steps = []
    for a_t, b_t in zip(a_steps, b.unbind(1), strict=True):
        h = a_t * h + b_t
        steps.append(h)
    return torch.stack(steps, dim=1), h


def make_inputs(shape: tuple[int, int, int], kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random decay and input for one benchmark case, both requiring grad.

    Args:
        shape: `(B, T, D)`.
        kind: One of `KINDS`.

    Returns:
        `a` (`[B, T, D]` for gated, `[D]` otherwise) and `b` `[B, T, D]`.
    """
    bsz, length, dim = shape
    if kind == "real_gated":
        a = torch.rand(bsz, length, dim) * 0.5 + 0.49
        b = torch.randn(bsz, length, dim)
    elif kind == "real_bcast":
        a = torch.rand(dim) * 0.5 + 0.49
        b = torch.randn(bsz, length, dim)
    elif kind == "complex_bcast":
        a = torch.polar(torch.rand(dim) * 0.5 + 0.49, torch.rand(dim) * 6.28)
        b = torch.randn(bsz, length, dim, dtype=torch.complex64)
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return a.requires_grad_(), b.requires_grad_()


def time_ms(fn: ScanFn, a: torch.Tensor, b: torch.Tensor, backward: bool, min_run_time: float) -> float:
    """Median wall time of one call in milliseconds (torch.utils.benchmark, blocked autorange).

    Args:
        fn: The scan to time, called as `fn(a, b)`.
        a: Decay, requiring grad.
        b: Input `[B, T, D]`, requiring grad.
        backward: Also run the backward pass, with a random upstream gradient on `h` and `h_last`.
        min_run_time: Seconds of measurement per timing.

    Returns:
        The median time in milliseconds.
    """
    g_h = torch.randn_like(b)
    g_last = torch.randn_like(b[:, 0])

    def run() -> None:
        h, h_last = fn(a, b)
        if backward:
            torch.autograd.grad((h, h_last), (a, b), (g_h, g_last.to(h_last.dtype)))

    run()  # warm-up
    timer = benchmark.Timer(stmt="run()", globals={"run": run})
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or `platform.processor()` elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def to_markdown(meta: dict[str, object], rows: list[dict[str, object]]) -> str:
    """The results as a markdown table with a header naming the machine."""
    lines = [
        "# linear_scan CPU benchmark",
        "",
        f"torch {meta['torch']}, {meta['cpu']}, {meta['num_threads']} threads"
        + (" (quick run)" if meta["quick"] else "")
        + ". Median ms per call; speed-up = loop / auto. Generated by `tools/bench_scan.py`.",
        "",
        "| B·N | T | D | a | pass | form | loop ms | unbind loop ms | naive ms | auto ms "
        "| speed-up | vs unbind loop |",
        "|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['bn']} | {r['t']} | {r['d']} | {r['kind']} | {r['pass']} | {r['form']} "
            f"| {r['loop_ms']:.3f} | {r['unbind_loop_ms']:.3f} | {r['naive_ms']:.3f} | {r['auto_ms']:.3f} "
            f"| {r['speedup']:.2f} | {r['speedup_vs_unbind']:.2f} |"
        )
    return "\n".join(lines) + "\n"


@dataclass
class Row:
    """One benchmark result."""

    bn: int
    t: int
    d: int
    kind: str
    pass_: str
    form: str
    loop_ms: float
    unbind_loop_ms: float
    naive_ms: float
    auto_ms: float
    speedup: float
    speedup_vs_unbind: float


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and writes the JSON and markdown reports."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short timings (for a smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    min_run_time = 0.05 if args.quick else 0.5
    fns: dict[str, ScanFn] = {
        "loop": plain_loop_scan,
        "unbind_loop": unbind_loop_scan,
        "naive": lambda a, b: naive_linear_scan(a, b),
        "auto": lambda a, b: linear_scan(a, b),
    }
    cases = [(s, k, p) for s in SHAPES for k in KINDS for p in PASSES]
    rows: list[dict[str, object]] = []
    for shape, kind, pass_ in tqdm(cases, desc="bench_scan", unit="case", file=sys.stderr):
        a, b = make_inputs(shape, kind)
        times = {name: time_ms(fn, a, b, pass_ == "fwd+bwd", min_run_time) for name, fn in fns.items()}
        row = asdict(
            Row(
                *shape,
                kind=kind,
                pass_=pass_,
                form=choose_scan_form(*shape, b.dtype),
                loop_ms=times["loop"],
                unbind_loop_ms=times["unbind_loop"],
                naive_ms=times["naive"],
                auto_ms=times["auto"],
                speedup=times["loop"] / times["auto"],
                speedup_vs_unbind=times["unbind_loop"] / times["auto"],
            )
        )
        row["pass"] = row.pop("pass_")
        rows.append(row)
    meta: dict[str, object] = {
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "num_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "quick": args.quick,
        "min_run_time_s": min_run_time,
    }
    markdown = to_markdown(meta, rows)
    print(markdown)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "scan_cpu.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    (args.out_dir / "scan_cpu.md").write_text(markdown)
    worst = min(float(r["speedup"]) for r in rows)
    worst_unbind = min(float(r["speedup_vs_unbind"]) for r in rows)
    print(f"worst speed-up of auto: {worst:.2f} vs loop, {worst_unbind:.2f} vs unbind loop", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
