"""`vidssm extract-features`: features of every video of a folder or annotation file.

vidssm extract-features --checkpoint DIR | --npz FILE | --onnx FILE  --videos DIR|LIST  --out DIR
                        [--output embedding|tokens|logits] [--mode stream|clip] [--chunk 64]
                        [--clip-len L] [--batch-size 8] [--format csv|kinetics|...] [--root DIR] [--device cpu]
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    """Runs the extraction; returns 0 when every video was extracted, 1 when some failed (they are listed)."""
    parser = argparse.ArgumentParser(
        prog="vidssm extract-features",
        description="Per-frame (streamed, constant memory) or per-clip features of every video of a folder, "
        "one .npy per video plus index.jsonl; a rerun resumes.",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a save_pretrained folder (a head-less one gives embedding / tokens)")
    src.add_argument("--npz", help="a released TRecViT .npz checkpoint")
    src.add_argument("--onnx", help="an ONNX export: a step graph (--mode stream) or an offline graph (--mode clip)")
    parser.add_argument(
        "--videos", required=True, help="a folder of videos, a list file (one path a line) or, with --format, an "
        "annotation file"
    )
    parser.add_argument("--format", help="annotation format of --videos (csv, kinetics, list, ssv2, ...)")
    parser.add_argument("--root", help="folder that relative paths in --videos are relative to")
    parser.add_argument("--out", required=True, help="output folder (a rerun skips the videos done)")
    parser.add_argument("--output", choices=("embedding", "tokens", "logits"), default="embedding")
    parser.add_argument(
        "--mode",
        choices=("stream", "clip"),
        default="stream",
        help="stream: one feature per frame, every frame seen in order from one state; "
        "clip: one feature per clip of --clip-len frames, each from a fresh state",
    )
    parser.add_argument("--chunk", type=int, default=64, help="stream: frames fed per call")
    parser.add_argument("--clip-len", type=int, default=None, help="clip: frames per clip (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=8, help="clip: clips per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")

    import torch

    from .backends import load_feature_backend
    from .extract import INDEX_NAME, extract_features, list_videos

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        videos = list_videos(args.videos, args.format, args.root)
        backend = load_feature_backend(args.checkpoint, args.npz, args.onnx, args.output, args.mode, args.device)
        clip_len = args.clip_len if args.clip_len is not None else backend.clip_len
        run = extract_features(
            backend, videos, args.out, args.chunk, clip_len, args.batch_size, progress=not args.no_progress
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"vidssm extract-features: error: {err}", file=sys.stderr)
        return 2
    print(
        f"{run['done']} videos extracted ({run['frames']} frames, {run['seconds']:.1f} s), {run['skipped']} already "
        f"done, {run['failed']} failed; index: {args.out}/{INDEX_NAME}"
    )
    if run["failed"]:
        from .extract import read_index

        _, entries = read_index(f"{args.out}/{INDEX_NAME}")
        for entry in entries.values():
            if "error" in entry:
                print(f"  failed: {entry['error']}", file=sys.stderr)
    return 1 if run["failed"] else 0
