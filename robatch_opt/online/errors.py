"""Errors of the online routers: bad parameters and misuse, each naming the field."""

from __future__ import annotations

from ..errors import RobatchError

__all__ = ["OnlineError", "UnknownModelError", "StreamError"]


class OnlineError(RobatchError, ValueError):
    """A router or replay parameter is out of range (``alpha``, ``V``, ``rate_per_s``, ...).

    Parameters
    ----------
    field : str
        Name of the bad parameter, e.g. ``"alpha"`` or ``"arrival[17]"``.
    message : str
    """

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"`{field}`: {message}")


class UnknownModelError(OnlineError):
    """A model name the router or the stream does not know."""


class StreamError(OnlineError):
    """A stream cannot be replayed (NaN outcome, shapes that disagree, models that differ)."""
