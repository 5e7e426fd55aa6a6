"""`jcorpus` command line: one subcommand module per stage, each registering its own parser."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipeline.errors import UserError

# Each module defines `register(subparsers)` that adds its subcommand(s) with `set_defaults(func=...)`.
COMMAND_MODULES = (
    "pipeline.cmd_curate",
    "pipeline.cmd_tokenizer",
    "pipeline.cmd_quality",
    "pipeline.cmd_pack",
    "pipeline.cmd_report",
    "pipeline.cmd_demo",
)


class _QuietOptionalExtras(logging.Filter):
    """Beam warns on the root logger at import when its GCP client libraries are absent: noise for local runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jcorpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a stage not built yet
        module.register(sub)
    return parser


NO_FILESYSTEM = "Unable to get filesystem from specified path"


def main(argv: list[str] | None = None) -> int:
    logging.getLogger().addFilter(_QuietOptionalExtras())
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"jcorpus {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # Beam's plain ValueError for a URL scheme whose extra is not installed
        if not str(exc).startswith(NO_FILESYSTEM):
            raise
        print(f"jcorpus {args.command}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
