"""`jcorpus` command line: one subcommand module per stage, each registering its own parser."""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from pipeline.errors import STOPS, Terminated, UserError
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
# session (jcorpus pickles none); the traceback of a step stopped by Ctrl-C or SIGTERM (`main` says it); and
# the 6-line warning per mirror that a Flink or Spark job-server jar is being downloaded (a failure is one
# line naming the URL, `runner.run`; the README says how to stage the jar).
BEAM_NOISE = {"root": ("apitools not found",),
              "apache_beam.runners.portability.local_job_service": ("No semi_persistent_directory found",),
              "apache_beam.runners.common": ("KeyboardInterrupt [while running", "Terminated [while running"),
              "apache_beam.utils.subprocess_server": ("Apache Beam is downloading dependencies",)}


# After Ctrl-C or SIGTERM the step that was running logs the stop as its error (wrapped by whatever it was
# inside: "decoding with 'utf-8-sig' codec failed (Terminated: )"), and the runner stops its workers in the
# middle of a bundle, so their data streams end under the runner's readers, which Beam logs as errors with
# tracebacks (and a reader thread dies of it); a job of the embedded job service, cancelled, logs its end as an
# error. Those are the stop's own echoes, dropped once a stop signal has arrived; `main` says what happened in
# one line.
BEAM_STOP_NOISE = ("apache_beam.runners.common", "apache_beam.runners.worker.data_plane",
                   "apache_beam.runners.portability.fn_api_runner.worker_handlers",
                   "apache_beam.runners.portability.local_job_service")


class _QuietAfterStop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not STOPS


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if not STOPS:
        threading.__excepthook__(args)


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
    for name in BEAM_STOP_NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietAfterStop) for f in logger.filters):
            logger.addFilter(_QuietAfterStop())


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
FILESYSTEM_EXTRAS = {"s3": "aws", "hdfs": "hadoop", "gs": "gcp", "azfs": "azure"}  # URL scheme: Beam's extra


def _filesystem_options(extra: list[str]) -> None:
    """Give Beam's file systems the run's options before the driver's own checks (`--out` and the inputs are
    listed before any pipeline exists, which is what sets them otherwise): S3 and HDFS take their credentials,
    region, host from these and refused every call without them ("Must provide one of client or options")."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions(flags=list(extra)))


def _missing_filesystem(exc: BaseException) -> str | None:
    """One line for a URL whose Beam file system is not installed: Beam says so for gs:// in a ValueError, and
    for s3:// or hdfs:// in a BeamIOError wrapping the ImportError (or boto3's absence), which was a traceback."""
    if isinstance(exc, ValueError) and str(exc).startswith(NO_FILESYSTEM):
        return str(exc).splitlines()[0]
    from apache_beam.io.filesystem import BeamIOError

    details = getattr(exc, "exception_details", None) if isinstance(exc, BeamIOError) else None
    for path, cause in (details or {}).items() if isinstance(details, dict) else ():
        if isinstance(cause, ImportError) or "boto3" in str(cause):
            extra = FILESYSTEM_EXTRAS.get(str(path).partition("://")[0], "...")
            return (f"{path}: its file system is not installed ({str(cause).splitlines()[0]}); "
                    f"pip install 'apache-beam[{extra}]'")
    return None


def _terminate(signum: int, frame: object) -> None:
    STOPS.append(Terminated)
    raise Terminated


def _interrupt(signum: int, frame: object) -> None:
    STOPS.append(KeyboardInterrupt)
    raise KeyboardInterrupt


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
        if getattr(args, "accepts_extra", False):
            _filesystem_options(extra)
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
        if missing := _missing_filesystem(exc):  # a URL scheme whose Beam extra is missing
            print(f"jcorpus {args.command}: error: {missing}", file=sys.stderr)
            return 2
        raise


def console() -> int:
    """The `jcorpus` command: `main` with SIGTERM and Ctrl-C handled (only here: a library caller keeps its own
    handlers)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _interrupt)
    threading.excepthook = _thread_excepthook
    return main()


if __name__ == "__main__":
    sys.exit(console())
