"""A plan's column kept in its plan store (``gather=False``), read on demand.

A plan of more queries than fit in memory keeps its options in the zarr plan store the
solve wrote. The store's path is fixed (by default ``x.plan.zarr`` beside ``x.zarr``), so
a later solve replaces it; a bare zarr array of the earlier plan then read the later plan's
options without a word (new-user audit). Every store carries a ``plan_id`` written with it,
and a :class:`PlanColumn` checks it on every read: a replaced or removed store raises
:class:`~.errors.PlanStoreReplacedError` instead.
"""

from __future__ import annotations

import numpy as np

from .errors import PlanStoreReplacedError

__all__ = ["PlanColumn"]


class PlanColumn:
    """One column (``option``, ``model``, ``batch_size`` or ``query_task``) of a stored plan.

    Reads like a read-only 1-D array: ``col[a:b]`` and ``np.asarray(col)`` read from the
    store (the whole column for the latter), ``len(col)``, ``col.shape`` and ``col.dtype``
    do not read. Picklable (a path, a name and an id).

    Parameters
    ----------
    path : str
        The plan store.
    name : str
        The array in it.
    plan_id : str
        The ``plan_id`` attribute the store had when the plan was made.
    """

    ndim = 1

    def __init__(self, path: str, name: str, plan_id: str):
        import zarr

        self.path, self.name, self.plan_id = str(path), str(name), str(plan_id)
        arr = self._group(zarr)[name]
        self.shape = (int(arr.shape[0]),)
        self.dtype = np.dtype(arr.dtype)

    def _group(self, zarr):
        try:
            grp = zarr.open_group(self.path, mode="r")
        except (FileNotFoundError, OSError, ValueError, KeyError) as exc:
            raise PlanStoreReplacedError(self.path, f"the plan store was removed ({type(exc).__name__}); "
                                                    "the plan's options are gone") from None
        if grp.attrs.get("plan_id") != self.plan_id:
            raise PlanStoreReplacedError(self.path, "a later solve replaced this plan store; the plan's options "
                                                    "are gone (give each plan its own `plan_path` to keep both)")
        return grp

    def _array(self):
        import zarr
        return self._group(zarr)[self.name]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self._array()[key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = np.asarray(self._array()[:])
        return a if dtype is None else a.astype(dtype, copy=False)

    def tolist(self) -> list:
        return np.asarray(self).tolist()

    def __repr__(self) -> str:
        return f"PlanColumn({self.path!r}, {self.name!r}, n={self.shape[0]:,})"
