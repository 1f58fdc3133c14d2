"""Streaming-parity check (`vidssm parity`): frame-by-frame `step` gives the offline forward's numbers.

Runs on random small models of every temporal kind (no download) and prints, per model, the
largest relative difference between streamed and offline logits over the first `T` frames,
the size of the streaming state (constant) and the time per frame.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils._pytree import tree_leaves

import vidssm

DEMO_MODELS = ("trecvit_tiny", "trecvit_tiny_lru", "trecvit_tiny_hybrid", "trecvit_tiny_attention", "late_rglru_tiny")


def state_bytes(state) -> int:
    """Bytes held by a streaming state."""
    return sum(t.numel() * t.element_size() for t in tree_leaves(state))


@torch.no_grad()
def parity(name: str, frames: int, img_size: int, depth: int) -> dict:
    """Streams `frames` random frames through `name` and compares every prefix with the offline model."""
    overrides: dict = dict(num_classes=10, frames_per_clip=frames)
    if name.startswith("trecvit"):
        cfg = vidssm.models.get_model_config(name)
        overrides.update(img_size=img_size, depth=depth, temporal=dict(kind=cfg.temporal.kinds(cfg.depth)[:depth]))
    else:
        overrides.update(encoder_kwargs=dict(img_size=img_size, depth=depth), depth=2)
    model = vidssm.create_model(name, **overrides).eval()
    video = torch.rand(1, frames, 3, img_size, img_size)
    state = model.init_state(1)
    sizes, worst, start = set(), 0.0, time.perf_counter()
    streamed = []
    for t in range(frames):
        logits, state = model.step(video[:, t], state)
        streamed.append(logits)
        sizes.add(state_bytes(state))
    per_frame_ms = 1000 * (time.perf_counter() - start) / frames
    for t in range(frames):
        offline = model(video[:, : t + 1])
        worst = max(worst, ((streamed[t] - offline).abs().max() / offline.abs().max()).item())
    params = sum(p.numel() for p in model.parameters())
    return dict(
        model=name,
        params=params,
        max_rel_err=worst,
        state_kib=max(sizes) / 1024,
        state_constant=len(sizes) == 1,
        ms_per_frame=per_frame_ms,
    )


def main(argv: list[str] | None = None) -> int:
    """Prints the parity table; exits non-zero if any model streams differently from its offline forward."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(DEMO_MODELS))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(f"Streaming parity: {args.frames} random {args.img_size}x{args.img_size} frames, depth {args.depth}\n")
    header = f"{'model':<24}{'params':>10}{'max rel err':>14}{'state KiB':>11}{'constant':>10}{'ms/frame':>10}"
    print(header + "\n" + "-" * len(header))
    ok = True
    for name in args.models:
        r = parity(name, args.frames, args.img_size, args.depth)
        ok &= r["max_rel_err"] <= 1e-5 and r["state_constant"]
        print(
            f"{r['model']:<24}{r['params']:>10,}{r['max_rel_err']:>14.2e}{r['state_kib']:>11.1f}"
            f"{str(r['state_constant']):>10}{r['ms_per_frame']:>10.1f}"
        )
    print("\nstep(frame, state) after t frames == model(video[:, :t]) for every t:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
