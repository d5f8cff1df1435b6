"""Beyond one machine: chunked instances (zarr) and the greedy with its certificate on Dask.

- :func:`open_zarr` / ``ro.load("x.zarr")``: a :class:`ChunkedInstance`, read lazily chunk by
  chunk; :func:`save_zarr` / ``ro.save(inst, "x.zarr")`` writes one.
- :func:`solve` / ``ro.solve(inst, budget=..., method="greedy", client=client)``: the in-memory
  greedy's plan, bound and gap, computed chunk by chunk on a ``dask.distributed`` cluster.
- :func:`connect`: a client for a scheduler address, with a clear error when unreachable.

Needs the ``[dask]`` extra (dask, distributed, zarr); importing this package does not.
"""

from __future__ import annotations

from .errors import (ChunkError, ChunkLayoutError, ChunkValueError, ClusterSetupError, DistributedUnsupportedError,
                     NoWorkersError, PlanStoreReplacedError, SchedulerUnreachableError)
from .plan_column import PlanColumn
from .store import ChunkedInstance, ChunkRef, open_zarr, save_zarr, write_chunked, is_zarr_path
from .greedy import budget_from_fraction, connect, reference_costs, solve

__all__ = ["ChunkedInstance", "ChunkRef", "open_zarr", "save_zarr", "write_chunked", "is_zarr_path",
           "solve", "connect", "reference_costs", "budget_from_fraction", "ChunkError", "ChunkLayoutError", "ChunkValueError",
           "SchedulerUnreachableError", "DistributedUnsupportedError", "ClusterSetupError", "NoWorkersError",
           "PlanColumn", "PlanStoreReplacedError"]
