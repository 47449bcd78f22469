"""One error tree for sfpipe: every error says whether trying again can help.

A handler maps ``TransientError`` to a non-2xx answer so that Pub/Sub redelivers, and
``TerminalError`` to an acknowledgement plus a record (and the dead-letter path), so that
nothing is retried forever and nothing is dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class SfpipeError(Exception):
    """Root of every error sfpipe raises on purpose."""


class TransientError(SfpipeError):
    """A failure that may go away on its own: rate limits, 5xx, lock contention."""


class TerminalError(SfpipeError):
    """A failure that will recur on every retry: bad input, a broken file, a missing field."""


class BadInputError(TerminalError):
    """The caller sent something malformed; the message names the field and the expected form."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfigError(TerminalError):
    """A setting is missing or malformed; raised at start-up, before any work."""

    @classmethod
    def from_validation(cls, exc: ValidationError) -> ConfigError:
        """Turn pydantic's report into one line per variable: name, value, expected form."""
        lines = []
        for err in exc.errors():
            name = "SFPIPE_" + "_".join(str(p) for p in err["loc"]).upper()
            value = err.get("input")
            expected = err["msg"].removeprefix("Value error, ")
            lines.append(f"{name}={value!r} is invalid: {expected}")
        return cls("invalid configuration: " + "; ".join(lines))


class ConflictError(TransientError):
    """A conditional write lost a race: somebody else wrote the object first."""


class NotFoundError(TerminalError):
    """An object, table or record that should exist does not."""


def describe_validation(exc: ValidationError, what: str) -> str:
    """One readable sentence from a pydantic error: which field, what was wrong, what was expected."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return f"invalid {what}: " + "; ".join(parts)
