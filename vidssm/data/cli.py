"""`vidssm data ...` commands: build datasets and inspect video files.

vidssm data moving-mnist temporal   --out data/mmnist_temporal [--seed 0 --num-train 3000 ...]
vidssm data moving-mnist prediction --out data/mmnist_prediction
vidssm data real-motion --out data/real_motion [--seed 0 --train-bases 60 ...]
vidssm data long-memory --frames 256 --out data/long_memory_256 [--seed 0 --image-size 32 --train 1000 ...]
vidssm data probe VIDEO [VIDEO ...]
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from vidssm.data.long_memory import LongMemoryConfig, build_long_memory
from vidssm.data.moving_mnist import MovingMNISTConfig, build_moving_mnist
from vidssm.data.real_motion import SETS as REAL_SETS
from vidssm.data.real_motion import RealMotionConfig, build_real_motion


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidssm data", description="Build datasets and inspect video files.")
    sub = parser.add_subparsers(dest="command", required=True)
    mm = sub.add_parser("moving-mnist", help="build a Moving-MNIST video set from real MNIST digits")
    mm.add_argument("kind", choices=("temporal", "prediction"), help="direction classification or frame prediction")
    mm.add_argument("--out", required=True, help="output folder")
    mm.add_argument("--force", action="store_true", help="rebuild even if the folder holds this build")
    mm.add_argument("--quiet", action="store_true", help="no progress bar")
    for f in fields(MovingMNISTConfig):
        if f.name != "kind":
            mm.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=None, help="default: per kind")
    rm = sub.add_parser(
        "real-motion",
        help="build real-footage sets (arrow of time + speed, camera motion, order of two camera moves) from "
        "shipped videos",
    )
    rm.add_argument("--out", required=True, help="output folder")
    rm.add_argument("--force", action="store_true", help="rebuild even if the folder holds this build")
    rm.add_argument("--quiet", action="store_true", help="no progress bar")
    for f in fields(RealMotionConfig):
        kind = {"int": int, "float": float}.get(str(f.type))
        if kind is None:  # test_sources
            rm.add_argument(f"--{f.name.replace('_', '-')}", nargs="+", default=None, help=f"default: {f.default}")
        else:
            rm.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None, help=f"default: {f.default}")
    lm = sub.add_parser("long-memory", help="build the long-range memory set: name the cue digit of the first frames")
    lm.add_argument("--frames", type=int, required=True, help="frames per clip T")
    lm.add_argument("--out", required=True, help="output folder")
    lm.add_argument("--seed", type=int, default=0)
    lm.add_argument("--image-size", type=int, default=32, help="frame side in pixels")
    lm.add_argument("--digit-size", type=int, default=None, help="digit side in pixels (default: half the frame)")
    lm.add_argument("--still-cue", action="store_true", help="the cue stands still in the centre (distractors move)")
    lm.add_argument("--train", type=int, default=1000, help="train clips")
    lm.add_argument("--val", type=int, default=200, help="validation clips")
    lm.add_argument("--test", type=int, default=200, help="test clips")
    lm.add_argument("--videos", action="store_true", help="also write .mp4 clips and {split}.csv (slow at large T)")
    lm.add_argument("--force", action="store_true", help="rebuild even if the folder holds this build")
    lm.add_argument("--quiet", action="store_true", help="no progress bar")
    probe = sub.add_parser("probe", help="print frame count, fps, display rotation and size of video files")
    probe.add_argument("videos", nargs="+")
    probe.add_argument("--exact", action="store_true", help="count frames by decoding")
    return parser


def main(argv: list[str]) -> int:
    """Runs a `vidssm data` command.

    Args:
        argv: Arguments after `data`, e.g. `["moving-mnist", "temporal", "--out", "data/mm"]`.

    Returns:
        Exit status.

    Raises:
        SystemExit: Bad arguments or a configuration the builder refuses (`ValueError`), or the output folder holds
            another build (status 2; the message names `--force`).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except FileExistsError as err:
        # The builders' messages name the Python API's `force=True`; on the command line the switch is --force.
        parser.error(str(err).replace("pass force=True", "pass --force to replace it"))
    except ValueError as err:  # a configuration the builder cannot build: its fields are the flags' names
        parser.error(f"{args.command}: {err}")
    return 2  # not reached: parser.error exits


def _run(args: argparse.Namespace) -> int:
    if args.command == "moving-mnist":
        overrides = {
            f.name: getattr(args, f.name)
            for f in fields(MovingMNISTConfig)
            if f.name != "kind" and getattr(args, f.name, None) is not None
        }
        cfg = (
            MovingMNISTConfig.prediction(**overrides)
            if args.kind == "prediction"
            else MovingMNISTConfig(kind="temporal", **overrides)
        )
        out = build_moving_mnist(args.out, cfg, force=args.force, progress=not args.quiet)
        print(f"{cfg.kind} Moving-MNIST: {cfg.num_train}/{cfg.num_val}/{cfg.num_test} clips in {out}")
        return 0
    if args.command == "real-motion":
        overrides = {
            f.name: getattr(args, f.name) for f in fields(RealMotionConfig) if getattr(args, f.name) is not None
        }
        if "test_sources" in overrides:
            overrides["test_sources"] = tuple(overrides["test_sources"])
        rcfg = RealMotionConfig(**overrides)
        out = build_real_motion(args.out, rcfg, force=args.force, progress=not args.quiet)
        sets = ", ".join(f"{name}/ ({len(classes)} classes)" for name, classes in REAL_SETS.items())
        print(f"real-footage sets in {out}: {sets}; test sources {rcfg.test_sources}")
        return 0
    if args.command == "long-memory":
        lcfg = LongMemoryConfig(
            seed=args.seed,
            num_frames=args.frames,
            image_size=args.image_size,
            digit_size=args.digit_size or args.image_size // 2,
            still_cue=args.still_cue,
            num_train=args.train,
            num_val=args.val,
            num_test=args.test,
        )
        out = build_long_memory(args.out, lcfg, videos=args.videos, force=args.force, progress=not args.quiet)
        counts = f"{lcfg.num_train}/{lcfg.num_val}/{lcfg.num_test}"
        print(f"long-memory set, {lcfg.num_frames} frames: {counts} clips in {out}")
        return 0
    from vidssm.data.readers import VideoReadError, frame_index

    status = 0
    for path in args.videos:
        try:
            index = frame_index(path, exact_count=args.exact)
        except VideoReadError as err:
            print(f"{path}: ERROR {err.reason}")
            status = 1
            continue
        how = "counted by decoding" if index.decoded else "header agrees with packets"
        turn = f", rotation {index.rotation}° (frames are read rotated)" if index.rotation else ", rotation 0°"
        print(
            f"{path}: {index.num_frames} frames ({how}; header {index.header_frames}), {index.fps:.3f} fps"
            + turn
            + (f", {index.error}" if index.error else "")
        )
    return status


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
