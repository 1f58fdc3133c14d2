"""Peak training memory vs clip length: TRecViT (recurrence over time) vs joint space-time attention.

Each (model, frames) point runs in a fresh process: build the model, record the resident memory,
run one forward + backward pass on a random clip, and report the peak resident memory above that
baseline (`ru_maxrss`). Both models have the same width, depth, heads, patch size and frame size;
the joint model attends over all `T x (1+N)` tokens at once (ViViT-style), the way a space-time
transformer without recurrence processes a clip. Both are also measured with activation checkpointing
per layer (`set_grad_checkpointing`, `grad_checkpointing: true` in a task config), which keeps only
each layer's input. Results: docs/benchmarks/memory_cpu.{json,md}.

    python tools/bench_memory.py [--frames 16 32 64] [--img-size 112] [--batch 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
KINDS = ("trecvit", "joint", "trecvit+ckpt", "joint+ckpt")


class JointSpaceTime(nn.Module):
    """ViT blocks over all tokens of a clip at once: `[B, T(1+N), D]` (the no-recurrence baseline)."""

    def __init__(self, img_size: int, patch: int, width: int, depth: int, heads: int, frames: int) -> None:
        super().__init__()
        self.grad_checkpointing = False
        from vidssm.layers.blocks import SpatialBlock
        from vidssm.layers.patch_embed import FrameTokenizer

        self.tokenizer = FrameTokenizer(img_size, patch, 3, width)
        self.time_embed = nn.Parameter(torch.zeros(1, frames, 1, width))
        self.blocks = nn.ModuleList(SpatialBlock(width, heads, 4 * width) for _ in range(depth))
        self.head = nn.Linear(width, 400)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.tokenizer(video) + self.time_embed  # [B, T, 1+N, D]
        x = x.flatten(1, 2)  # [B, T(1+N), D]
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) if self.grad_checkpointing else block(x)
        return self.head(x.mean(1))


class DividedSpaceTime(nn.Module):
    """TimeSformer-style divided attention: per layer, attention over time for every token position
    `[B(1+N), T, D]`, then a ViT block over the tokens of each frame `[BT, 1+N, D]` (the second baseline).

    A CLS token per frame, as TRecViT, instead of TimeSformer's one CLS token per clip.
    """

    def __init__(self, img_size: int, patch: int, width: int, depth: int, heads: int, frames: int) -> None:
        super().__init__()
        self.grad_checkpointing = False
        from timm.layers import Attention

        from vidssm.layers.blocks import SpatialBlock
        from vidssm.layers.norm import LayerNorm
        from vidssm.layers.patch_embed import FrameTokenizer

        self.tokenizer = FrameTokenizer(img_size, patch, 3, width)
        self.time_embed = nn.Parameter(torch.zeros(1, frames, 1, width))
        self.time_norms = nn.ModuleList(LayerNorm(width) for _ in range(depth))
        self.time_attns = nn.ModuleList(Attention(width, heads, qkv_bias=True) for _ in range(depth))
        self.blocks = nn.ModuleList(SpatialBlock(width, heads, 4 * width) for _ in range(depth))
        self.head = nn.Linear(width, 400)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def _layer(self, i: int, x: torch.Tensor) -> torch.Tensor:
        bsz, length, num, width = x.shape
        streams = x.transpose(1, 2).reshape(bsz * num, length, width)  # [(B N), T, D]
        streams = streams + self.time_attns[i](self.time_norms[i](streams))
        x = streams.reshape(bsz, num, length, width).transpose(1, 2)  # [B, T, N, D]
        return self.blocks[i](x.flatten(0, 1)).unflatten(0, (bsz, length))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.tokenizer(video) + self.time_embed  # [B, T, 1+N, D]
        for i in range(len(self.blocks)):
            x = checkpoint(self._layer, i, x, use_reentrant=False) if self.grad_checkpointing else self._layer(i, x)
        return self.head(x[:, :, 0].mean(1))


def rss_bytes() -> int:
    """The resident memory of this process now (`/proc/self/statm`)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def bench_trecvit(frames: int, img_size: int, width: int, depth: int, heads: int, **overrides) -> torch.nn.Module:
    """The TRecViT of the memory and training benchmarks (seed 0; MLP 4x width; `overrides` are config fields)."""
    import vidssm

    torch.manual_seed(0)
    return vidssm.create_model(
        "trecvit_tiny",
        img_size=img_size,
        width=width,
        depth=depth,
        num_heads=heads,
        mlp_dim=4 * width,
        frames_per_clip=frames,
        **overrides,
    )


def measure(kind: str, frames: int, img_size: int, batch: int, width: int, depth: int, heads: int) -> dict:
    """One point, in this process: peak resident bytes above the post-build baseline for one train step."""
    torch.manual_seed(0)
    base_kind, _, ckpt = kind.partition("+")
    if base_kind == "trecvit":
        model = bench_trecvit(frames, img_size, width, depth, heads)
    else:
        model = JointSpaceTime(img_size, 16, width, depth, heads, frames)
    if ckpt:
        model.set_grad_checkpointing()
    video = torch.rand(batch, frames, 3, img_size, img_size)
    base = rss_bytes()
    model(video).logsumexp(-1).sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(model=kind, frames=frames, peak_mib=(peak - base) / 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="*", default=[16, 32, 64])
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--point", nargs=2, metavar=("KIND", "FRAMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    dims = dict(img_size=args.img_size, batch=args.batch, width=args.width, depth=args.depth, heads=args.heads)
    if args.point:
        print(json.dumps(measure(args.point[0], int(args.point[1]), **dims)))
        return
    rows = []
    for frames in args.frames:
        for kind in KINDS:
            cmd = [sys.executable, __file__, "--point", kind, str(frames)]
            cmd += [f"--{k.replace('_', '-')}={v}" for k, v in dims.items()]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    by = {(r["model"], r["frames"]): r["peak_mib"] for r in rows}
    table = (
        "| frames | TRecViT MiB | joint space-time MiB | TRecViT / joint | TRecViT, checkpointed MiB "
        "| joint, checkpointed MiB | checkpointed TRecViT / joint |\n|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for f in args.frames:
        t, j, tc, jc = (by[k, f] for k in KINDS)
        table += f"| {f} | {t:.0f} | {j:.0f} | {t / j:.2f}× | {tc:.0f} | {jc:.0f} | {tc / jc:.2f}× |\n"
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "memory_cpu.json").write_text(json.dumps(dict(dims=dims, results=rows), indent=2) + "\n")
    (OUT / "memory_cpu.md").write_text(
        "# Peak training memory (one forward + backward), CPU\n\n"
        f"`python tools/bench_memory.py` — width {args.width}, depth {args.depth}, {args.heads} heads, "
        f"16×16 patches at {args.img_size}², batch {args.batch}; peak resident memory above the model's.\n\n"
        + table
        + "\nBoth grow linearly with the clip length: PyTorch's CPU attention is memory-efficient (the `(T·N)²` "
        "attention matrix of the joint model is never stored). Per layer TRecViT runs two blocks where the joint "
        "model runs one: an RG-LRU block of width 2D, which keeps about a dozen activations of width 2D per token "
        "for the backward pass, and a ViT block. Checkpointing keeps only each layer's input; the peak is then "
        "one layer's recomputation and backward.\n"
    )


if __name__ == "__main__":
    main()
