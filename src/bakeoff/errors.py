"""User-facing errors: the CLI prints these as one or two lines and exits 2, without a traceback.

Anything else that escapes is a bug in bakeoff and keeps its traceback.
"""


class BakeoffError(Exception):
    """A problem the user can fix (bad config, bad data, missing model). The message says how."""


class ConfigError(BakeoffError):
    """The YAML or a command-line override does not describe a valid run."""


class DataError(BakeoffError):
    """The task data cannot be used as given (missing columns, too few examples, ...)."""


class ModelError(BakeoffError):
    """A candidate model cannot be found or loaded."""
