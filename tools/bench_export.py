"""Per-frame latency of the streaming step: PyTorch eager vs torch.compile vs ONNX Runtime, on the CPU.

All three run the same model and the same frames in this run; the table reports the median and p90
per-frame latency and the speed-up over eager. Results: docs/benchmarks/export_cpu.{json,md}.

    python tools/bench_export.py [--model trecvit_tiny] [--img-size 112] [--frames 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import vidssm
from vidssm.export import export_model
from vidssm.export.onnx_runtime import OnnxStreamingModel

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def _time_steps(step, frames, state, warmup: int) -> list[float]:
    times = []
    for t, frame in enumerate(frames):
        start = time.perf_counter()
        _, state = step(frame, state)
        if t >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="trecvit_tiny")
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small model and few frames (smoke run)")
    args = parser.parse_args()
    overrides = dict(img_size=args.img_size, num_classes=400)
    if args.quick:
        args.frames, overrides = 12, dict(img_size=32, depth=2, num_classes=10)
    torch.manual_seed(0)
    model = vidssm.create_model(args.model, **overrides).eval()
    frames = torch.rand(args.frames, 1, 3, overrides["img_size"], overrides["img_size"])

    results = {}
    with torch.no_grad():
        bar = tqdm(total=3, desc="runtimes")
        results["eager"] = _time_steps(model.step, frames, model.init_state(1), args.warmup)
        bar.update()
        compiled = torch.compile(model.step, dynamic=False)
        start = time.perf_counter()
        compiled(frames[0], model.init_state(1))
        compile_s = time.perf_counter() - start
        results["torch.compile"] = _time_steps(compiled, frames, model.init_state(1), args.warmup)
        bar.update()
        with tempfile.TemporaryDirectory() as tmp:
            path = export_model(model, Path(tmp) / "step.onnx", "onnx", "step")
            runner = OnnxStreamingModel(path)
            np_frames = [f.numpy() for f in frames]
            results["onnxruntime"] = _time_steps(runner.step, np_frames, runner.init_state(1), args.warmup)
        bar.update()
        bar.close()

    eager_ms = statistics.median(results["eager"]) * 1e3
    rows = []
    for name, times in results.items():
        ms = np.array(times) * 1e3
        rows.append(
            dict(
                runtime=name,
                median_ms=float(np.median(ms)),
                p90_ms=float(np.percentile(ms, 90)),
                fps=float(1e3 / np.median(ms)),
                speedup_vs_eager=float(eager_ms / np.median(ms)),
            )
        )
    meta = dict(
        model=args.model,
        overrides=overrides,
        frames=args.frames,
        warmup=args.warmup,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        compile_seconds=round(compile_s, 1),
    )
    header = "| runtime | median ms/frame | p90 ms | fps | speed-up vs eager |\n|---|---:|---:|---:|---:|\n"
    table = header + "".join(
        f"| {r['runtime']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['fps']:.1f} "
        f"| {r['speedup_vs_eager']:.2f}× |\n"
        for r in rows
    )
    print(
        f"\n{args.model} {overrides}, batch 1, {args.frames} frames ({args.warmup} warm-up), "
        f"{meta['threads']} threads, torch {meta['torch']}\n"
    )
    print(table)
    if not args.quick:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "export_cpu.json").write_text(json.dumps(dict(meta=meta, results=rows), indent=2) + "\n")
        md = (
            f"# Streaming step latency on the CPU: eager vs torch.compile vs ONNX Runtime\n\n"
            f"`python tools/bench_export.py` — {args.model} {overrides}, batch 1, {meta['threads']} threads, "
            f"torch {meta['torch']}, {meta['cpu']}; torch.compile took {meta['compile_seconds']} s.\n\n{table}"
        )
        (OUT / "export_cpu.md").write_text(md)


if __name__ == "__main__":
    main()
