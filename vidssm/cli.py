"""`vidssm` command line: one entry point, each sub-command implemented in its own module.

vidssm list-models [PATTERN]
vidssm demo [...]
vidssm export --checkpoint DIR | --model NAME  --format onnx|torch-export --what offline|step
              [--output logits|embedding|tokens] --out FILE
vidssm extract-features --checkpoint DIR | --npz FILE | --onnx FILE  --videos DIR|LIST --out DIR [...]
vidssm data moving-mnist [...]
"""

from __future__ import annotations

import argparse
import sys


def _export(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vidssm export", description="Export a model to ONNX or torch.export.")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a save_pretrained folder")
    src.add_argument("--model", help="a registered model name (random weights), e.g. trecvit_tiny")
    parser.add_argument("--format", choices=("onnx", "torch-export"), default="onnx")
    parser.add_argument("--what", choices=("offline", "step"), default="step")
    parser.add_argument(
        "--output",
        choices=("logits", "embedding", "tokens"),
        default="logits",
        help="what the graph returns: class logits, the per-frame embedding (the head's readout) or the tokens",
    )
    parser.add_argument("--out", required=True, help="output file (.onnx or .pt2)")
    args = parser.parse_args(argv)

    import vidssm
    from vidssm.export import export_model

    try:
        model = vidssm.from_pretrained(args.checkpoint) if args.checkpoint else vidssm.create_model(args.model)
    except (FileNotFoundError, ValueError, KeyError) as err:  # as `vidssm stream` and `extract-features`: one line
        parser.error(f"--checkpoint {args.checkpoint}: {err}" if args.checkpoint else f"--model {args.model}: {err}")
    try:
        model.check_output(args.output)
    except ValueError as err:
        parser.error(f"--output {args.output}: {err}")
    path = export_model(model, args.out, args.format, args.what, args.output)
    print(f"exported {args.what} → {args.output} ({args.format}) to {path}")
    return 0


def _list_models(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vidssm list-models")
    parser.add_argument("pattern", nargs="?", default="*")
    args = parser.parse_args(argv)
    import vidssm

    print("\n".join(vidssm.list_models(args.pattern)))
    return 0


def _demo(argv: list[str]) -> int:
    from vidssm import demo

    return demo.main(argv)


def _parity(argv: list[str]) -> int:
    from vidssm import parity

    return parity.main(argv)


def _train(command: str):
    def run(argv: list[str]) -> int:
        from vidssm.tasks.cli import train_main

        return train_main([command, *argv])

    return run


def _stream(argv: list[str]) -> int:
    from vidssm.stream.cli import stream_main

    return stream_main(argv)


def _serve(argv: list[str]) -> int:
    from vidssm.stream.cli import serve_main

    return serve_main(argv)


def _extract_features(argv: list[str]) -> int:
    from vidssm.features import cli

    return cli.main(argv)


def _data(argv: list[str]) -> int:
    from vidssm.data import cli

    return cli.main(argv)


COMMANDS = {
    "list-models": (_list_models, "print registered model names"),
    "demo": (_demo, "the quickstart: build data, train, evaluate, stream, report"),
    "parity": (_parity, "check streaming == offline on random models of every kind"),
    "export": (_export, "export a model to ONNX / torch.export"),
    "extract-features": (_extract_features, "per-frame or per-clip features of a folder of videos (.npy + index)"),
    "data": (_data, "build datasets (e.g. Moving-MNIST)"),
    "stream": (_stream, "run a model live on a camera, file, RTSP/HTTP stream or image folder"),
    "serve": (_serve, "browser page: webcam -> WebSocket -> model, one state per tab"),
    "fit": (_train("fit"), "train (LightningCLI; --config configs/experiments/...yaml)"),
    "validate": (_train("validate"), "evaluate on the validation split"),
    "test": (_train("test"), "evaluate on the test split"),
    "predict": (_train("predict"), "run predictions"),
}


def main(argv: list[str] | None = None) -> int:
    """Dispatches `vidssm <command> ...`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = "\n".join(f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items())
        print(f"usage: vidssm <command> [options]\n\ncommands:\n{lines}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]][0](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
