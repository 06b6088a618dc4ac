"""Exception types. Every message names the thing, the reason and the fix."""


class BenchError(Exception):
    """Base class for errors shown to the user as one clear line (no traceback)."""


class UnknownNameError(BenchError, KeyError):
    """A method, dataset, metric or profile name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnavailableError(BenchError):
    """Something exists but cannot be used here (missing weights, absent dataset)."""


class BadInputError(BenchError):
    """An input file or plugin result that cannot be used; names the file and the fix."""
