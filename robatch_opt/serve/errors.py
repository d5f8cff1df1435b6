"""Errors of the serving layer; each names what is wrong and where."""

from __future__ import annotations

from ..errors import RobatchError

__all__ = ["ServeError", "ServeConfigError", "EndpointUnreachableError", "MissingKeyError",
           "JournalError"]


class ServeError(RobatchError):
    """Base class of the serving layer's errors."""


class ServeConfigError(ServeError, ValueError):
    """Bad serving input: an endpoints file or mapping, questions, system prompts, a format.

    Parameters
    ----------
    field : str
        What is wrong, e.g. ``"endpoints['gemma'].api"`` or ``"questions[3]"``.
    message : str
    source : str, optional
        The file it was read from.
    """

    def __init__(self, field: str, message: str, *, source: str | None = None):
        self.field = field
        self.source = source
        self.detail = message
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}`{field}`: {message}")


class MissingKeyError(ServeConfigError):
    """An endpoint names an API-key environment variable that is not set (or is empty)."""


class EndpointUnreachableError(ServeError, ConnectionError):
    """An endpoint did not answer its ``/models`` check (found before anything is sent)."""


class JournalError(ServeError, ValueError):
    """A journal cannot be resumed: another plan, other questions, or a corrupt line."""
