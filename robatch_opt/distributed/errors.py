"""Errors of the chunked store and the distributed solver.

Each names what is wrong and where (store path, array, chunk, global query index), and each
survives pickling, so an error raised on a Dask worker reaches the caller intact.
"""

from __future__ import annotations

from ..errors import FormatError, InstanceError, RobatchError

__all__ = ["ChunkError", "ChunkLayoutError", "ChunkValueError", "SchedulerUnreachableError",
           "DistributedUnsupportedError", "ClusterSetupError", "NoWorkersError", "PlanStoreReplacedError"]


class ChunkError(FormatError):
    """A chunk of a stored instance is missing or cannot be decoded (corrupt, truncated).

    Attributes
    ----------
    path : str
        The store (``x.zarr``).
    array : str
        The array whose chunk is bad (``utility``, ``input_tokens``...).
    chunk : int
        Chunk index along the queries.
    """

    def __init__(self, path: str, array: str, chunk: int, message: str):
        self.path, self.array, self.chunk = str(path), str(array), int(chunk)
        self._message = message
        super().__init__(f"{path}: chunk {chunk} of `{array}` {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.array, self.chunk, self._message))


class PlanStoreReplacedError(FormatError):
    """A plan kept in its store (``gather=False``) is read after a later solve replaced or
    removed that store: its options are gone, and reading the other plan's would be wrong.

    Attributes
    ----------
    path : str
        The plan store.
    """

    def __init__(self, path: str, message: str):
        self.path = str(path)
        self._message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self._message))


class ChunkLayoutError(FormatError):
    """The arrays of a store disagree with each other or with its metadata (shapes, chunks)."""


class ChunkValueError(InstanceError):
    """A stored value is invalid (NaN, out of range, a query that fits no model).

    ``field`` names the array and the *global* query index, e.g. ``utility[1234567, 3]``.
    """

    def __init__(self, field: str, message: str, source: str | None = None):
        self._message = message
        super().__init__(field, message, source=source)

    def __reduce__(self):
        return (type(self), (self.field, self._message, self.source))


class SchedulerUnreachableError(RobatchError, ConnectionError):
    """No Dask scheduler answered at the given address within the timeout."""

    def __init__(self, address: str, message: str):
        self.address = str(address)
        self._message = message
        super().__init__(f"Dask scheduler at {address!r} cannot be reached: {message}")

    def __reduce__(self):
        return (type(self), (self.address, self._message))


class DistributedUnsupportedError(RobatchError, ValueError):
    """The distributed greedy was asked for something it does not do (e.g. the quality form)."""


class ClusterSetupError(RobatchError, RuntimeError):
    """The cluster cannot run the solver: its scheduler or a worker lacks robatch_opt (or has
    another version). The message names the process and the address."""


class NoWorkersError(ClusterSetupError):
    """The scheduler answered but no worker joined it within the timeout."""
