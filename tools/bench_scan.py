"""Benchmark `linear_scan` on the CPU (default) or the GPU (`--gpu`) against its peers.

CPU: times forward and forward+backward (with autograd) for each shape and decay kind against a
plain PyTorch loop and the naive spec, prints a table and writes `docs/benchmarks/scan_cpu.json`
and `docs/benchmarks/scan_cpu.md`.

GPU (`--gpu`, needs CUDA): times forward, backward and both for the video, long-`T` and single-step
shapes, reports the effective bandwidth of the minimum traffic (real gated forward: `a`, `b`, `h`;
backward: `a`, `h`, `dh`, `da`, `db`) as a percentage of a device-to-device copy measured in the
same run, and runs the same shapes through the peers that are available: a PyTorch loop, the
PyTorch forms, `torch.associative_scan`, FLA's `fused_recurrent_hgrn`/`chunk_hgrn` (`fla-core`)
and `accelerated-scan`; a missing peer is skipped with a note. Writes
`docs/benchmarks/scan_gpu.json` and `docs/benchmarks/scan_gpu.md`.

    python tools/bench_scan.py            # full CPU run, writes docs/benchmarks/
    python tools/bench_scan.py --quick    # short run, for a smoke test
    python tools/bench_scan.py --gpu      # GPU run (H100 targets: see GPU_TARGETS)
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
from vidssm.kernels.linear_scan import (
    choose_scan_form,
    choose_triton_form,
    chunk_linear_scan,
    fused_recurrent_linear_scan,
    torch_linear_scan,
)

from vidssm.machine import cpu_name

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




def to_markdown(meta: dict[str, object], rows: list[dict[str, object]]) -> str:
    """The results as a markdown table with a header naming the machine."""
    lines = [
        "# linear_scan CPU benchmark",
        "",
        f"torch {meta['torch']}, {meta['cpu']}, {meta['num_threads']} threads"
        + (" (quick run)" if meta["quick"] else "")
        + ". Median ms per call; speed-up = loop / auto. Generated by `tools/bench_scan.py`.",
        "",
        "| B·N | T | D | a | pass | form | loop ms | unbind loop ms | naive ms | auto ms | speed-up | vs unbind loop |",
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


# --------------------------------------------------------------------------------------------------
# GPU section (`--gpu`)
# --------------------------------------------------------------------------------------------------

GPU_SHAPES: tuple[tuple[int, int, int], ...] = (  # (B*N, T, D)
    (8192, 32, 768),  # video: batch x tokens, frames, width
    (2048, 16, 512),
    (16384, 8, 1024),
    (1, 8192, 2048),  # long T, few rows: the chunked form
    (4, 4096, 1024),
    (8192, 1, 768),  # the streaming step
)
VIDEO_SHAPES = GPU_SHAPES[:3]
GPU_CASES: tuple[tuple[str, torch.dtype], ...] = (
    ("real_gated", torch.float32),
    ("real_gated", torch.bfloat16),
    ("real_bcast", torch.float32),
    ("complex_bcast", torch.complex64),
)
GPU_PASSES = ("fwd", "bwd", "fwd+bwd")
# Issue targets on an H100, checked and reported at the end of a GPU run.
GPU_TARGETS = {
    "fwd_pct_copy": 85.0,  # video shapes, real gated
    "bwd_pct_copy": 75.0,
    "x_accelerated_scan": 1.5,
    "x_fla_fused_recurrent_hgrn": 2.0,
    "step_us": 10.0,  # T = 1 kernel time (CUDA graph), launch excluded
}
LOOP_MAX_T = 1024  # the PyTorch loop takes minutes per call beyond this; skipped with a note
PEER_NOTES: dict[str, str] = {}


def min_bytes(shape: tuple[int, int, int], kind: str, dtype: torch.dtype, pass_: str) -> int:
    """Bytes a scan must move at least: every `[B, T, D]` tensor read or written once.

    Forward reads `a` (gated only) and `b` and writes `h`; backward reads `a` (gated), `h` and `dh`
    and writes `da` (gated) and `db`. `[D]` decays, states and their gradients are negligible.

    Args:
        shape: `(B, T, D)`.
        kind: One of `KINDS`.
        dtype: Storage dtype of `b` (and of a gated `a`).
        pass_: One of `GPU_PASSES`.

    Returns:
        The byte count.
    """
    gated = kind == "real_gated"
    tensors = {"fwd": 3 if gated else 2, "bwd": 5 if gated else 3}
    count = tensors["fwd"] + tensors["bwd"] if pass_ == "fwd+bwd" else tensors[pass_]
    bsz, length, dim = shape
    return count * bsz * length * dim * dtype.itemsize


def gpu_inputs(
    shape: tuple[int, int, int], kind: str, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random decay and input on the GPU, both requiring grad; `a` in `(0.49, 0.99)` like a trained gate.

    Args:
        shape: `(B, T, D)`.
        kind: One of `KINDS`.
        dtype: `b`'s dtype (complex64 for ``"complex_bcast"``).
        device: A CUDA device.

    Returns:
        `a` (`[B, T, D]` for gated, `[D]` otherwise) and `b` `[B, T, D]`.
    """
    bsz, length, dim = shape
    if kind == "complex_bcast":
        a = torch.polar(torch.rand(dim, device=device) * 0.5 + 0.49, torch.rand(dim, device=device) * 6.28)
    elif kind == "real_bcast":
        a = (torch.rand(dim, device=device) * 0.5 + 0.49).to(dtype)
    else:
        a = (torch.rand(bsz, length, dim, device=device) * 0.5 + 0.49).to(dtype)
    b = torch.randn(bsz, length, dim, device=device).to(dtype)
    return a.requires_grad_(), b.requires_grad_()


def _associative_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from torch._higher_order_ops.associative_scan import associative_scan

    def combine(x: tuple[torch.Tensor, torch.Tensor], y: tuple[torch.Tensor, torch.Tensor]):
        return y[0] * x[0], y[0] * x[1] + y[1]

    _, h = associative_scan(combine, (torch.broadcast_to(a, b.shape), b), dim=1)
    return h, h[:, -1]


_compiled_associative_scan = None


def peer_scans(kind: str, dtype: torch.dtype, shape: tuple[int, int, int]) -> dict[str, ScanFn]:
    """The implementations timed for one case: vidssm's forms and the available peers.

    Peers that need another layout get their inputs converted inside the call (FLA takes the log
    decay, accelerated-scan `[B, D, T]`); the conversion is timed too, as a caller would pay it.
    Missing or unsuitable peers are left out and explained in `PEER_NOTES`.

    Args:
        kind: One of `KINDS`.
        dtype: `b`'s dtype.
        shape: `(B, T, D)`.

    Returns:
        Name -> `fn(a, b) -> (h, h_last)`.
    """
    global _compiled_associative_scan
    length = shape[1]
    fns: dict[str, ScanFn] = {
        "vidssm": lambda a, b: linear_scan(a, b),
        "fused_recurrent": lambda a, b: fused_recurrent_linear_scan(a, b),
        "chunk": lambda a, b: chunk_linear_scan(a, b),
        "torch_form": lambda a, b: torch_linear_scan(a, b),
    }
    if length <= LOOP_MAX_T:
        fns["loop"] = unbind_loop_scan
    else:
        PEER_NOTES["loop"] = f"PyTorch loop skipped for T > {LOOP_MAX_T} (minutes per call)"
    if kind == "real_gated" and dtype == torch.float32:
        if _compiled_associative_scan is None:
            _compiled_associative_scan = torch.compile(_associative_scan, dynamic=False)
        fns["associative_scan"] = _compiled_associative_scan
    else:
        PEER_NOTES["associative_scan"] = (
            "torch.associative_scan (compiled, one Inductor compile per shape): real_gated float32 only"
        )
    if kind == "real_gated":
        try:
            from fla.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn

            fns["fla_fused_recurrent_hgrn"] = lambda a, b: fused_recurrent_hgrn(b, a.log(), output_final_state=True)
            fns["fla_chunk_hgrn"] = lambda a, b: chunk_hgrn(b, a.log(), output_final_state=True)
        except ImportError as err:
            PEER_NOTES["fla"] = f"fla-core not installed (pip install fla-core): {err}"
        try:
            from accelerated_scan.warp import scan as warp_scan

            def accelerated(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                h = warp_scan(a.transpose(1, 2).contiguous(), b.transpose(1, 2).contiguous())  # [B, D, T]
                return h.transpose(1, 2), h[:, :, -1]

            if length & (length - 1) == 0 and length >= 32:
                fns["accelerated_scan"] = accelerated
            else:
                PEER_NOTES["accelerated_scan_T"] = "accelerated-scan needs T a power of two >= 32; skipped elsewhere"
        except ImportError as err:
            PEER_NOTES["accelerated_scan"] = f"accelerated-scan not installed (pip install accelerated-scan): {err}"
    else:
        PEER_NOTES["gated_peers"] = "FLA hgrn and accelerated-scan take a full gate tensor: timed on real_gated only"
    return fns


def time_gpu_ms(fn: ScanFn, a: torch.Tensor, b: torch.Tensor, pass_: str, quick: bool) -> float:
    """Median GPU time of one pass in milliseconds (`triton.testing.do_bench`, L2 flushed per call).

    Args:
        fn: `fn(a, b) -> (h, h_last)`.
        a: Decay, requiring grad.
        b: Input, requiring grad.
        pass_: ``"fwd"`` (no autograd graph), ``"bwd"`` (the backward of one recorded forward) or
            ``"fwd+bwd"``.
        quick: Fewer repetitions.

    Returns:
        Milliseconds.
    """
    from triton.testing import do_bench

    rep = 20 if quick else 100
    if pass_ == "fwd":

        def run() -> None:
            with torch.no_grad():
                fn(a, b)

        return do_bench(run, warmup=5, rep=rep, return_mode="median")
    h, h_last = fn(a, b)
    g_h, g_last = torch.randn_like(h), torch.randn_like(h_last)
    if pass_ == "bwd":

        def run() -> None:
            torch.autograd.grad((h, h_last), (a, b), (g_h, g_last), retain_graph=True)

        return do_bench(run, warmup=5, rep=rep, return_mode="median")

    def run() -> None:
        out, last = fn(a, b)
        torch.autograd.grad((out, last), (a, b), (g_h, g_last))

    return do_bench(run, warmup=5, rep=rep, return_mode="median")


def copy_bandwidth_gbs(device: torch.device) -> float:
    """Device-to-device copy bandwidth (bytes read + written per second, in GB/s) of a 1 GiB tensor."""
    from triton.testing import do_bench

    src = torch.empty(256 * 2**20, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src), warmup=10, rep=200, return_mode="median")
    return 2 * src.nbytes / (ms * 1e-3) / 1e9


def step_kernel_us(device: torch.device) -> dict[str, float]:
    """The T = 1 step `[8192, 1, 768]` fp32: eager call (dispatch + launch) and kernel-only (CUDA graph) µs."""
    from triton.testing import do_bench, do_bench_cudagraph

    a, b = (x.detach() for x in gpu_inputs((8192, 1, 768), "real_gated", torch.float32, device))
    h0 = torch.randn(8192, 768, device=device)
    step = lambda: linear_scan(a, b, h0)  # noqa: E731
    return {
        "eager_us": do_bench(step, warmup=10, rep=100, return_mode="median") * 1e3,
        "graph_us": do_bench_cudagraph(step, rep=100, return_mode="median") * 1e3,
    }


def gpu_markdown(meta: dict[str, object], rows: list[dict[str, object]]) -> str:
    """GPU results as markdown: one row per (shape, case, pass), impls as columns of ms."""
    impls = list(dict.fromkeys(k for r in rows for k in r["ms"]))
    lines = [
        "# linear_scan GPU benchmark",
        "",
        f"{meta['device']}, torch {meta['torch']}, triton {meta['triton']}"
        + (" (quick run)" if meta["quick"] else "")
        + f". Device-to-device copy: {meta['copy_gbs']:.0f} GB/s. Median ms per call (L2 flushed);"
        " `% copy` = minimum bytes / time as a share of the copy bandwidth; `x peer` = peer ms /"
        " vidssm ms. Generated by `tools/bench_scan.py --gpu`.",
        "",
        "| B·N | T | D | case | pass | form | GB/s | % copy | " + " | ".join(impls) + " | x accel | x FLA rec |",
        "|---:|---:|---:|---|---|---|---:|---:|" + "---:|" * len(impls) + "---:|---:|",
    ]
    for r in rows:
        cells = " | ".join(f"{r['ms'][k]:.3f}" if k in r["ms"] else "–" for k in impls)
        x_acc = f"{r['x_accelerated_scan']:.2f}" if r.get("x_accelerated_scan") else "–"
        x_fla = f"{r['x_fla_fused_recurrent_hgrn']:.2f}" if r.get("x_fla_fused_recurrent_hgrn") else "–"
        lines.append(
            f"| {r['bn']} | {r['t']} | {r['d']} | {r['case']} | {r['pass']} | {r['form']} | {r['gbs']:.0f} "
            f"| {r['pct_copy']:.1f} | {cells} | {x_acc} | {x_fla} |"
        )
    step = meta["step"]
    lines += ["", f"T = 1 step [8192, 1, 768] fp32: {step['graph_us']:.1f} µs kernel (CUDA graph), "
              f"{step['eager_us']:.1f} µs eager call.", ""]  # fmt: skip
    lines += ["Targets (H100): " + ", ".join(f"{k} {v}" for k, v in GPU_TARGETS.items()), ""]
    lines += [f"- {name}: {'met' if ok else 'NOT met'} ({detail})" for name, (ok, detail) in meta["targets"].items()]
    if meta["notes"]:
        lines += ["", "Notes:", *(f"- {n}" for n in meta["notes"].values())]
    return "\n".join(lines) + "\n"


def check_targets(rows: list[dict[str, object]], step: dict[str, float]) -> dict[str, tuple[bool, str]]:
    """The issue's H100 targets against this run's rows (video shapes, real gated fp32/bf16)."""
    video = [r for r in rows if (r["bn"], r["t"], r["d"]) in VIDEO_SHAPES and r["case"].startswith("real_gated")]
    out: dict[str, tuple[bool, str]] = {}
    for pass_, key in (("fwd", "fwd_pct_copy"), ("bwd", "bwd_pct_copy")):
        worst = min((float(r["pct_copy"]) for r in video if r["pass"] == pass_), default=float("nan"))
        out[key] = (worst >= GPU_TARGETS[key], f"worst {worst:.1f}% of copy")
    for peer in ("x_accelerated_scan", "x_fla_fused_recurrent_hgrn"):
        ratios = [float(r[peer]) for r in video if r.get(peer)]
        worst = min(ratios, default=float("nan"))
        out[peer] = (bool(ratios) and worst >= GPU_TARGETS[peer], f"worst {worst:.2f}x" if ratios else "peer absent")
    out["step_us"] = (step["graph_us"] < GPU_TARGETS["step_us"], f"{step['graph_us']:.1f} µs")
    return out


def run_gpu(args: argparse.Namespace) -> int:
    """The GPU benchmark: writes `scan_gpu.json` and `scan_gpu.md` under `args.out_dir`."""
    if not torch.cuda.is_available():
        print("--gpu needs a CUDA device", file=sys.stderr)
        return 2
    import triton

    device = torch.device("cuda")
    torch.manual_seed(0)
    torch._dynamo.config.recompile_limit = 64  # associative_scan is compiled once per shape and dtype
    copy_gbs = copy_bandwidth_gbs(device)
    rows: list[dict[str, object]] = []
    cases = [(s, k, d) for s in GPU_SHAPES for k, d in GPU_CASES]
    for shape, kind, dtype in tqdm(cases, desc="bench_scan --gpu", unit="case", file=sys.stderr):
        a, b = gpu_inputs(shape, kind, dtype, device)
        fns = peer_scans(kind, dtype, shape)
        for pass_ in GPU_PASSES:
            times: dict[str, float] = {}
            for name, fn in fns.items():
                try:
                    times[name] = time_gpu_ms(fn, a, b, pass_, args.quick)
                except Exception as err:  # a peer that cannot run this case is reported, not fatal
                    reason = f"{type(err).__name__}: {err}".splitlines()[0][:200]
                    PEER_NOTES[f"{name}-{kind}-{dtype}"] = f"{name} failed on {kind} {dtype}: {reason}"
                    if name == "vidssm":
                        raise
            gbs = min_bytes(shape, kind, dtype, pass_) / (times["vidssm"] * 1e-3) / 1e9
            row: dict[str, object] = {
                "bn": shape[0], "t": shape[1], "d": shape[2], "case": f"{kind}/{str(dtype).removeprefix('torch.')}",
                "pass": pass_, "form": choose_triton_form(*shape, dtype.is_complex), "ms": times,
                "gbs": gbs, "pct_copy": 100 * gbs / copy_gbs,
            }  # fmt: skip
            for peer in ("accelerated_scan", "fla_fused_recurrent_hgrn", "fla_chunk_hgrn"):
                if peer in times:
                    row[f"x_{peer}"] = times[peer] / times["vidssm"]
            rows.append(row)
        del a, b
        torch.cuda.empty_cache()
    step = step_kernel_us(device)
    meta: dict[str, object] = {
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "quick": args.quick,
        "copy_gbs": copy_gbs,
        "step": step,
        "notes": dict(PEER_NOTES),
    }
    meta["targets"] = check_targets(rows, step)
    markdown = gpu_markdown(meta, rows)
    print(markdown)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "scan_gpu.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    (args.out_dir / "scan_gpu.md").write_text(markdown)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and writes the JSON and markdown reports."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short timings (for a smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--gpu", action="store_true", help="the GPU benchmark (CUDA) instead of the CPU one")
    args = parser.parse_args(argv)
    if args.gpu:
        return run_gpu(args)
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
