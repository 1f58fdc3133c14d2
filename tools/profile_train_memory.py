"""Where the memory of one TRecViT training step goes, on the CPU: saved activations per block and top ops.

Two views of one forward + backward pass (width 192, depth 4, 112², 16×16 patches, batch 2 by default):

1. **Saved for backward, per module**: `torch.autograd.graph.saved_tensors_hooks` sees every tensor autograd
   keeps for the backward pass; each is charged, once per storage, to the innermost module running when it
   was saved. This is what stays alive from the forward into the backward, the part of the peak that grows
   with depth and clip length.
2. **Top allocations per op**: `torch.profiler` with `profile_memory=True`, ops sorted by the memory they
   allocate themselves (`self_cpu_memory_usage`, allocations minus frees within the op, summed over calls).

Both are run with and without activation checkpointing and with each RG-LRU implementation
(`TemporalConfig.impl`). Writes `docs/benchmarks/train_memory_profile_cpu.{md,json}`.

    python tools/profile_train_memory.py [--frames 64] [--top 12]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import bench_trecvit  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
MIB = 2**20


def build(impl: str, frames: int, img_size: int, width: int, depth: int, heads: int) -> nn.Module:
    """The TRecViT of the training benchmarks with the RG-LRU implementation `impl`."""
    return bench_trecvit(frames, img_size, width, depth, heads, temporal={"impl": impl})


def saved_per_module(model: nn.Module, video: torch.Tensor) -> dict[str, float]:
    """MiB saved for backward during `model(video)`, charged to the innermost module (by class) saving it."""
    stack: list[str] = ["(model)"]
    hooks = []
    for _, module in model.named_modules():
        name = type(module).__name__
        hooks.append(module.register_forward_pre_hook(lambda m, a, n=name: stack.append(n)))
        hooks.append(module.register_forward_hook(lambda m, a, o: stack.pop() and None))  # None: keep the output
    seen: set[int] = set()
    per: dict[str, float] = defaultdict(float)

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen and not isinstance(t, nn.Parameter):
            seen.add(storage.data_ptr())
            per[stack[-1]] += storage.nbytes() / MIB
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(video).logsumexp(-1).sum()
    finally:
        for h in hooks:
            h.remove()
    loss.backward()
    return dict(sorted(per.items(), key=lambda kv: -kv[1]))


def _top_ancestor(event) -> str:
    while event.cpu_parent is not None:
        event = event.cpu_parent
    return event.name


def top_ops(model: nn.Module, video: torch.Tensor, top: int) -> tuple[list[dict], dict]:
    """The `top` ops by self-allocated CPU memory in one forward + backward pass, and where the peak is.

    The peak is found on a timeline that charges each op's self-allocated memory at its start: the op running
    at the peak and the top-level event (a forward op, or the autograd node being evaluated) around it.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(video).logsumexp(-1).sum().backward()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_memory_usage)
    ops = [
        dict(op=e.key, calls=e.count, self_mib=e.self_cpu_memory_usage / MIB)
        for e in events[:top]
        if e.self_cpu_memory_usage > 0
    ]
    level, peak, at = 0, 0, None
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        level += e.self_cpu_memory_usage
        if level > peak:
            peak, at = level, e
    where = dict(peak_mib=peak / MIB, op=at.name if at else "", inside=_top_ancestor(at) if at else "")
    return ops, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--impls", nargs="*", default=["autograd", "lean"])
    args = parser.parse_args()
    dims = dict(frames=args.frames, img_size=args.img_size, width=args.width, depth=args.depth, heads=args.heads)
    video = torch.rand(args.batch, args.frames, 3, args.img_size, args.img_size)
    results = []
    for impl in args.impls:
        for ckpt in (False, True):
            model = build(impl, **dims)
            model.set_grad_checkpointing(ckpt)
            saved = saved_per_module(model, video)
            ops, where = top_ops(model, video, args.top)
            results.append(dict(rglru_impl=impl, checkpointed=ckpt, saved_mib=saved, peak=where, top_ops=ops))
            print(json.dumps(results[-1]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "train_memory_profile_cpu.json").write_text(json.dumps(dict(dims=dims, results=results), indent=2) + "\n")
    md = [
        "# Where the memory of one training step goes (CPU)\n\n",
        f"`python tools/profile_train_memory.py` — TRecViT, width {args.width}, depth {args.depth}, {args.heads} "
        f"heads, 16×16 patches at {args.img_size}², batch {args.batch}, {args.frames} frames; one forward + "
        "backward pass.\n",
        "\n**Saved for backward** counts each tensor autograd keeps once per storage and charges it to the innermost "
        "module that saved it. With checkpointing the forward keeps only each layer's input, and the layer's "
        "activations are saved again, one layer at a time, during the backward (not counted here). "
        "**Top ops** are `torch.profiler` (`profile_memory=True`) ops by the memory they allocate themselves "
        "(allocations minus frees inside the op, summed over calls; autograd's backward ops included). "
        "**Peak**: the highest level of a timeline that charges each op's self-allocated memory at its start "
        "(above the memory at the start of the step), the op running then and the top-level event around it.\n",
    ]
    for r in results:
        ck = "checkpointed" if r["checkpointed"] else "not checkpointed"
        total = sum(r["saved_mib"].values())
        md.append(f"\n## `rglru_impl={r['rglru_impl']!r}`, {ck}: {total:.0f} MiB saved for backward\n\n")
        p = r["peak"]
        md.append(f"Peak {p['peak_mib']:.0f} MiB at `{p['op']}` inside `{p['inside']}`.\n\n")
        md.append("| module | saved MiB |\n|---|---:|\n")
        md += [f"| {k} | {v:.1f} |\n" for k, v in r["saved_mib"].items() if v >= 0.05]
        md.append("\n| op | calls | self-allocated MiB |\n|---|---:|---:|\n")
        md += [f"| `{o['op']}` | {o['calls']} | {o['self_mib']:.0f} |\n" for o in r["top_ops"]]
    (OUT / "train_memory_profile_cpu.md").write_text("".join(md))


if __name__ == "__main__":
    main()
