"""`jcorpus` command line: one subcommand module per stage, each registering its own parser."""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys

from pipeline.errors import UserError
from trainer_bridge.cliargs import OneLineParser

# Each module defines `register(subparsers)` that adds its subcommand(s) with `set_defaults(func=...)`.
COMMAND_MODULES = (
    "pipeline.cmd_curate",
    "pipeline.cmd_tokenizer",
    "pipeline.cmd_quality",
    "pipeline.cmd_pack",
    "pipeline.cmd_report",
    "pipeline.cmd_demo",
)


# Beam log lines that say nothing to a jcorpus user, by logger: at import, that its GCP client libraries are
# absent; each worker's warning, relayed by the local runner, that it has no folder for a pickled main
# session (jcorpus pickles none); and the traceback of a step stopped by Ctrl-C or SIGTERM (`main` says it).
BEAM_NOISE = {"root": ("apitools not found",),
              "apache_beam.runners.portability.local_job_service": ("No semi_persistent_directory found",),
              "apache_beam.runners.common": ("KeyboardInterrupt [while running", "Terminated [while running")}


class _QuietBeamNoise(logging.Filter):
    def __init__(self, texts: tuple[str, ...]) -> None:
        super().__init__()
        self.texts = texts

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in self.texts)


def _quiet_beam_noise() -> None:
    for name, text in BEAM_NOISE.items():
        logger = logging.getLogger(None if name == "root" else name)
        if not any(isinstance(f, _QuietBeamNoise) for f in logger.filters):
            logger.addFilter(_QuietBeamNoise(text))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="jcorpus", description=__doc__)
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


class Terminated(BaseException):
    """SIGTERM (a scheduler's or `timeout`'s stop), raised in the main thread so a run cleans up as on Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _stopped_by(exc: BaseException) -> type[BaseException] | None:
    """KeyboardInterrupt or Terminated, also when a Beam step re-raised it as a RuntimeError naming the step."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            return type(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    _quiet_beam_noise()
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
    except (KeyboardInterrupt, Terminated, Exception) as exc:
        stop = _stopped_by(exc)
        if stop is KeyboardInterrupt:  # Ctrl-C: nothing was committed (outputs are renamed into place at the end)
            print(f"jcorpus {args.command}: interrupted", file=sys.stderr)
            return 130
        if stop is Terminated:
            print(f"jcorpus {args.command}: terminated", file=sys.stderr)
            return 128 + signal.SIGTERM
        if isinstance(exc, ValueError) and str(exc).startswith(NO_FILESYSTEM):  # a URL scheme whose Beam extra
            print(f"jcorpus {args.command}: error: {str(exc).splitlines()[0]}", file=sys.stderr)  # is missing
            return 2
        raise


def console() -> int:
    """The `jcorpus` command: `main` with SIGTERM handled (only here: a library caller keeps its own handler)."""
    signal.signal(signal.SIGTERM, _terminate)
    return main()


if __name__ == "__main__":
    sys.exit(console())
