"""Errors a user can fix: the CLI prints them as one line (no traceback) and exits with code 2."""


class UserError(Exception):
    """A mistake the user can fix: missing input, existing output, bad option."""


class ConfigError(UserError):
    """A config mistake; the message starts with the dotted key, e.g. `sources[2].paths: no file matches 'x/*.warc'`."""
