"""`vidssm stream` and `vidssm serve`: live classification from a camera/file/URL/folder, or in a browser page.

vidssm stream --checkpoint DIR | --model NAME | --onnx STEP.onnx  --source 0|FILE|URL|DIR
              [--backend auto|onnx|compiled|eager]
              [--show] [--out annotated.mp4] [--jsonl preds.jsonl] [--max-frames N] [--top-k K] [--smoothing S]
vidssm serve  --checkpoint DIR | --model NAME | --onnx STEP.onnx  [--backend ...] [--host 127.0.0.1] [--port 8000]

`--backend auto` (the default) runs the fastest step that builds and matches eager PyTorch on probe frames:
ONNX Runtime (step graph exported on first use, cached per model and machine), then torch.compile, then eager
(`vidssm.stream.selection`). The first line printed says which backend runs and why.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .backends import StepBackend, load_backend, read_labels
from .selection import BACKENDS


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a save_pretrained folder")
    src.add_argument("--model", help="a registered model name with random weights (seed 0; demos), e.g. trecvit_tiny")
    src.add_argument("--onnx", help="an exported step graph (vidssm export --what step) run on ONNX Runtime")
    parser.add_argument("--labels", help="class names, one per line (default: the checkpoint's)")
    parser.add_argument("--num-classes", type=int, help="with --model: head size")
    parser.add_argument("--img-size", type=int, help="with --model: frame size")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per frame")
    parser.add_argument("--smoothing", type=float, default=0.0, help="display smoothing of probabilities, [0, 1)")
    parser.add_argument(
        "--reset-every", type=int, default=None, help="restart the state every N frames (default: never)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime CPU threads")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="what runs the step: auto (default) = ONNX Runtime (exported on first use, cached), else "
        "torch.compile, else eager, the first that builds and matches eager; or force one",
    )
    parser.add_argument("--compile", action="store_true", help="same as --backend compiled")
    parser.add_argument("-v", "--verbose", action="store_true")


def _choose_backend(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The `--backend` choice after mapping `--compile` onto it; conflicting flags end with a usage error."""
    choice = args.backend
    if args.compile:
        if args.onnx:
            parser.error("--compile applies to --checkpoint / --model, not to --onnx")
        if choice not in (None, "compiled"):
            parser.error(f"--compile means --backend compiled; it conflicts with --backend {choice}")
        choice = "compiled"
    choice = choice or "auto"
    if args.onnx and choice in ("compiled", "eager"):
        parser.error(
            f"--backend {choice} runs a PyTorch model (--checkpoint / --model); --onnx FILE runs on ONNX Runtime "
            "(--backend onnx or auto)"
        )
    return choice


def _backend(args: argparse.Namespace) -> StepBackend:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {}
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes
    if args.img_size is not None:
        overrides["img_size"] = args.img_size
    if overrides and not args.model:
        raise SystemExit("--num-classes / --img-size only apply to --model")
    labels = read_labels(args.labels) if args.labels else None
    try:
        return load_backend(
            args.checkpoint, args.model, args.onnx, labels, backend=args.backend, threads=args.threads, **overrides
        )
    except ValueError as err:
        if "without trained" not in str(err):
            raise
        raise SystemExit(
            f"error: {args.checkpoint} has no trained classifier, so there is nothing to stream ({err}). Fine-tune "
            "a head on it first (vidssm fit ... --model.init_args.init_from DIR), or write its per-frame features "
            "with `vidssm extract-features --checkpoint DIR`"
        ) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("vidssm.stream.loop").setLevel(logging.INFO)


def stream_main(argv: list[str] | None = None) -> int:
    """`vidssm stream`: classifies a live or recorded source frame by frame.

    Returns:
        0 on a clean end, 1 when the source fails (missing file, bad URL, camera lost after retries).
    """
    parser = argparse.ArgumentParser(prog="vidssm stream", description="Classify a camera, file, URL or folder live.")
    _add_model_args(parser)
    parser.add_argument("--source", required=True, help="camera index (0), video file, rtsp:// or http:// URL, folder")
    parser.add_argument("--show", action="store_true", help="overlay window if a display exists (q quits, r restarts)")
    parser.add_argument("--out", help="write the annotated video here (e.g. annotated.mp4)")
    parser.add_argument("--jsonl", help="write one JSON line of predictions per frame here")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after N source frames")
    parser.add_argument("--queue-size", type=int, default=2, help="capture queue capacity (frames)")
    parser.add_argument(
        "--drop",
        choices=("auto", "yes", "no"),
        default="auto",
        help="drop frames when inference lags: auto = only for cameras and network streams",
    )
    parser.add_argument("--retries", type=int, default=3, help="camera / network: tries before giving up")
    args = parser.parse_args(argv)
    args.backend = _choose_backend(parser, args)
    _logging(args.verbose)

    from .loop import run_stream
    from .sources import SourceError, check_source, open_source
    from .streaming import StreamingRunner

    try:
        check_source(args.source)  # a mistyped path fails now, not after the backend is built (an export)
    except SourceError as err:
        print(f"vidssm stream: {err}", file=sys.stderr)
        return 1
    try:
        backend = _backend(args)
        runner = StreamingRunner(backend, args.top_k, args.smoothing, args.reset_every)
    except (FileNotFoundError, ValueError, KeyError, TypeError, RuntimeError) as err:
        print(f"vidssm stream: {err}", file=sys.stderr)
        return 2
    print(backend.describe(), flush=True)
    try:
        source = open_source(args.source, retries=args.retries)
        drop = {"auto": None, "yes": True, "no": False}[args.drop]
        stats = run_stream(source, runner, args.jsonl, args.out, args.show, args.max_frames, args.queue_size, drop)
    except SourceError as err:
        print(f"vidssm stream: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vidssm stream: interrupted", file=sys.stderr)
        return 130
    print(f"{backend.name} on {source.name}: {stats.line()}")
    if args.out:
        print(f"annotated video: {args.out}")
    if args.jsonl:
        print(f"predictions: {args.jsonl}")
    return 0


def serve_main(argv: list[str] | None = None) -> int:
    """`vidssm serve`: a local web page that classifies the browser's webcam over a WebSocket."""
    from vidssm.serve.app import ServeLimits

    defaults = ServeLimits()
    parser = argparse.ArgumentParser(prog="vidssm serve", description="Live webcam classification in the browser.")
    _add_model_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-fps", type=float, default=defaults.max_fps, help="frames/s accepted per connection")
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections)
    parser.add_argument("--max-message-bytes", type=int, default=defaults.max_message_bytes)
    parser.add_argument("--max-pixels", type=int, default=defaults.max_pixels, help="largest frame, H*W")
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another web page origin (scheme://host[:port]) allowed to use the model; repeatable. "
        "By default only the page this server serves may open its WebSocket",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name this server is reached under (Host header), besides its bound address; repeatable",
    )
    args = parser.parse_args(argv)
    args.backend = _choose_backend(parser, args)
    _logging(args.verbose)

    from vidssm.serve.app import create_app
    from vidssm.serve.origin import AccessPolicy
    from vidssm.serve.server import serve

    try:
        policy = AccessPolicy.create(args.host, args.allow_origin, args.allow_host)
        backend = _backend(args)
    except (FileNotFoundError, ValueError, KeyError, TypeError, RuntimeError) as err:
        print(f"vidssm serve: {err}", file=sys.stderr)
        return 2
    print(backend.describe(), flush=True)
    limits = ServeLimits(
        max_message_bytes=args.max_message_bytes,
        max_pixels=args.max_pixels,
        max_fps=args.max_fps,
        max_connections=args.max_connections,
    )
    app = create_app(backend, limits, args.top_k, args.smoothing, args.reset_every, policy)
    print(f"vidssm serve: {backend.name} on http://{args.host}:{args.port}/  (Ctrl-C to stop)")
    serve(app, args.host, args.port, "info" if args.verbose else "warning")
    return 0
