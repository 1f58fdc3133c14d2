"""`vidssm` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point: `vidssm list-models [PATTERN]` or `vidssm demo [...]`."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="vidssm", description="Video models built on linear recurrences.")
    sub = parser.add_subparsers(dest="command", required=True)
    lm = sub.add_parser("list-models", help="print registered model names")
    lm.add_argument("pattern", nargs="?", default="*")
    sub.add_parser("demo", help="streaming-parity demonstration", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "list-models":
        import vidssm

        print("\n".join(vidssm.list_models(args.pattern)))
        return 0
    from vidssm import demo

    return demo.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
