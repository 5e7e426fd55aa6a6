"""Errors a user can fix: the CLI prints them as one line (no traceback) and exits with code 2."""


class UserError(Exception):
    """A mistake the user can fix: missing input, existing output, bad option."""


class ConfigError(UserError):
    """A config mistake; the message starts with the dotted key, e.g. `sources[2].paths: no file matches 'x/*.warc'`."""


class Terminated(BaseException):
    """SIGTERM (a scheduler's or `timeout`'s stop), raised in the main thread so a run cleans up as on Ctrl-C."""


STOPS: list[type[BaseException]] = []  # stop signals received by `jcorpus` (KeyboardInterrupt, Terminated)


def raise_if_stopped() -> None:
    """Raise again a stop the signal handler recorded: under load, a SIGTERM was seen to end a run with exit
    0 and its outputs committed, the exception lost on its way up through the runner (where, is not known).
    Called after a pipeline, before anything is committed."""
    if STOPS:
        raise STOPS[0]()
