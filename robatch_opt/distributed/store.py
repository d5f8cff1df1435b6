"""Instances stored in chunks: a zarr directory ``x.zarr`` read lazily, chunk by chunk.

Layout (zarr format 3, one group)::

    x.zarr/zarr.json            group attributes: format, models, tasks, options,
                                n_queries, chunk_queries
    x.zarr/query_task           (n,)    narrowest unsigned integer type that holds it
    x.zarr/input_tokens         (n,)    uint32 when every count is an integer, else float64
    x.zarr/output_tokens        (n, K)  idem
    x.zarr/utility              (n, J)  float64

Every array is chunked by queries with the same ``chunk_queries`` rows (the last chunk may be
shorter) and every chunk carries a CRC-32C checksum, so a corrupt chunk is detected when it
is read. A missing chunk is detected before it is read (zarr would otherwise return its fill
value). Nothing is ever held whole: :class:`ChunkedInstance` reads one chunk at a time, and
validates each chunk with the :class:`~robatch_opt.Instance` constructor, reporting a bad
value by its *global* query index.

The store must be a local directory or one on a file system every worker mounts at the
same path (NFS, Lustre...): Dask workers open it by path.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .._files import check_output_store
from .._validate import did_you_mean
from ..errors import FormatError, InstanceError
from ..instance import Instance, Model, Task
from .errors import ChunkError, ChunkLayoutError, ChunkValueError

__all__ = ["ChunkedInstance", "ChunkRef", "save_zarr", "open_zarr", "write_chunked", "ZARR_FORMAT",
           "DEFAULT_CHUNK_QUERIES", "is_zarr_path"]

#: Value of the group attribute ``format``.
ZARR_FORMAT = "robatch_opt.instance-zarr/1"

#: Queries per chunk when none is given: 2^18 rows of 16 float64 utilities are 32 MiB.
DEFAULT_CHUNK_QUERIES = 1 << 18

#: Per-query arrays: name -> number of dimensions.
ARRAYS = {"query_task": 1, "input_tokens": 1, "output_tokens": 2, "utility": 2}


def is_zarr_path(path) -> bool:
    """Whether ``path`` names a chunked store (suffix ``.zarr``)."""
    return Path(path).suffix.lower() == ".zarr"


def _zarr():
    try:
        import zarr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("chunked instances (.zarr) need zarr: pip install 'robatch_opt[dask]'") from exc
    return zarr


def _every_chunk(arr):
    """``arr`` set to write a chunk even when it equals the fill value (0): by default zarr
    skips it, and the reader then finds the chunk missing (a single-task instance has every
    ``query_task`` chunk all 0: its store could not be read back). Per array, not zarr's
    process-wide config: Dask workers write chunks from several threads at once."""
    return arr.with_config({"write_empty_chunks": True})


def _meta(models, tasks, n: int, chunk_queries: int) -> dict[str, Any]:
    options = [[k, b] for k, m in enumerate(models) for b in m.batch_sizes]
    return {
        "format": ZARR_FORMAT,
        "models": [{"name": m.name, "price_in": m.price_in, "price_out": m.price_out,
                    "context_window": m.context_window, "batch_sizes": list(m.batch_sizes)} for m in models],
        "tasks": [{"name": t.name, "system_tokens": t.system_tokens} for t in tasks],
        "options": options,
        "n_queries": int(n),
        "chunk_queries": int(chunk_queries),
    }


def _check_chunk_queries(chunk_queries) -> int:
    if isinstance(chunk_queries, bool) or not isinstance(chunk_queries, (int, np.integer)) or chunk_queries < 1:
        raise InstanceError("chunk_queries", f"must be an integer >= 1, got {chunk_queries!r}")
    return int(chunk_queries)


# ------------------------------------------------------------------------------- writing
# ------------------------------------------------------------- temporary stores and interrupts
# Workers write a store's chunks into its temporary folder. An interrupt (or a failure) makes
# the client remove that folder, but a worker in the middle of a chunk went on writing and
# re-created part of it (new-user audit: 3 of 8 interrupted solves left a `.x.plan.zarr.*.tmp`
# folder). So a writer holds a shared lock on the folder's parent while it writes, and writes
# only into a store that still exists; the removal takes the lock exclusively, so it waits for
# the chunks being written and every later writer finds the store gone.

@contextlib.contextmanager
def _parent_lock(tmp, exclusive: bool):
    """``flock`` on the parent directory of ``tmp`` (no lock where the platform or the file
    system has none: the removal is then as before, best effort)."""
    try:
        import fcntl
        fd = os.open(os.path.dirname(os.path.abspath(tmp)) or ".", os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)                       # releases the lock


@contextlib.contextmanager
def writing_into(tmp: str):
    """Held by a worker while it writes chunks into the temporary store ``tmp``.

    Raises
    ------
    FileNotFoundError
        The store is gone: the solve or the write that made it was interrupted or failed.
    """
    with _parent_lock(tmp, exclusive=False):
        if not os.path.exists(os.path.join(tmp, "zarr.json")):
            raise FileNotFoundError(f"{tmp}: the temporary store was removed (its solve or write was "
                                    "interrupted or failed); nothing written")
        yield


def uninterrupted(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` run to its end even if the caller is interrupted meanwhile; the
    interrupt is raised once it has ended.

    zarr does its I/O on a background event loop: an interrupt while the main thread waited
    for it left that I/O running, and it re-created files after the caller had removed the
    temporary store (2 of 24 interrupted solves, while the empty plan store was made). For
    the short writes of the driver (creating a store, one chunk, an attribute).
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:       # noqa: BLE001 - handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="robatch-zarr-write", daemon=True).start()
    pending = None
    # An Event, not Thread.join: a join interrupted by Ctrl-C can mark a running thread as
    # stopped (CPython 3.11's _wait_for_tstate_lock releases the thread's own lock), and the
    # write went on after the store was removed (2 of 24 runs).
    while not done.is_set():
        try:
            done.wait()
        except BaseException as exc:       # noqa: BLE001 - an interrupt: re-raised after the write
            pending = pending or exc
    if pending is not None:
        raise pending
    if "error" in box:
        raise box["error"]
    return box.get("value")


def remove_temporary(tmp) -> None:
    """Remove the temporary store ``tmp`` once no worker is writing into it."""
    with _parent_lock(tmp, exclusive=True):
        shutil.rmtree(tmp, ignore_errors=True)


class _Writer:
    """Creates the arrays of a store in a temporary directory; :meth:`commit` renames it in place."""

    def __init__(self, path, models, tasks, n: int, chunk_queries: int, dtypes: dict[str, str]):
        zarr = _zarr()
        from zarr.codecs import Crc32cCodec
        # The folder must exist (as for every output file); a file or a folder that is not a
        # store is never replaced.
        self.path = check_output_store(path, what="`path`")
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        try:
            self.n, self.chunk_queries = int(n), int(chunk_queries)
            K = len(models)
            J = sum(len(m.batch_sizes) for m in models)
            shapes = {"query_task": (n,), "input_tokens": (n,), "output_tokens": (n, K), "utility": (n, J)}

            def create():
                g = zarr.open_group(str(self.tmp), mode="w")
                for name, shape in shapes.items():
                    chunks = (self.chunk_queries,) + shape[1:]
                    g.create_array(name, shape=shape, chunks=chunks, dtype=dtypes[name],
                                   compressors=[Crc32cCodec()], fill_value=0)
                g.attrs.update(_meta(models, tasks, n, chunk_queries))
                return g

            g = uninterrupted(create)
        except BaseException:
            # An interrupt while the empty store is made (before any caller holds the writer
            # to abort it) left the temporary folder behind (new-user audit, 1 run in 24).
            self.abort()
            raise
        self.group = g

    def commit(self) -> Path:
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        remove_temporary(self.tmp)


def _token_dtype(values: np.ndarray) -> str:
    if values.size == 0 or (np.all(values == np.round(values)) and values.max() < 2 ** 32):
        return "uint32"
    return "float64"


def _task_dtype(n_tasks: int) -> str:
    return "uint8" if n_tasks <= 255 else "uint16" if n_tasks <= 65535 else "uint32"


def save_zarr(inst: Instance, path, *, chunk_queries: int = DEFAULT_CHUNK_QUERIES) -> Path:
    """Write an in-memory instance as a chunked store (what ``ro.save(inst, "x.zarr")`` does).

    Parameters
    ----------
    inst : Instance
    path : str or path-like
        Target directory, ``*.zarr``. Written under a temporary name and renamed, so a crash
        never leaves a half-written store under ``path``; an existing store is replaced.
    chunk_queries : int
        Queries per chunk.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(inst, Instance):
        raise TypeError(f"`inst`: must be a robatch_opt.Instance, got {type(inst).__name__}")
    # Never a chunk longer than the instance: zarr stores every chunk at full length, so 1,000
    # queries took 38 MB in the default 262,144-query chunks. (One chunk either way: the
    # same content.)
    cq = min(_check_chunk_queries(chunk_queries), max(inst.n_queries, 1))
    dtypes = {"query_task": _task_dtype(inst.n_tasks), "input_tokens": _token_dtype(inst.input_tokens),
              "output_tokens": _token_dtype(inst.output_tokens), "utility": "float64"}
    w = _Writer(path, inst.models, inst.tasks, inst.n_queries, cq, dtypes)
    try:
        for name in ARRAYS:
            arr = _every_chunk(w.group[name])
            values = getattr(inst, name)
            for r0 in range(0, inst.n_queries, cq):      # chunk by chunk: an interrupt waits for one
                uninterrupted(arr.__setitem__, slice(r0, r0 + cq), values[r0:r0 + cq].astype(arr.dtype))
        return w.commit()
    except BaseException:
        w.abort()
        raise


def write_chunked(path, models, tasks, n: int, chunk_queries: int, make_chunk: Callable[[int, int, int], Instance],
                  *, client=None, token_dtype: str = "uint32") -> "ChunkedInstance":
    """Write a store chunk by chunk: ``make_chunk(c, r0, r1)`` builds queries ``r0..r1-1``.

    Only one chunk is in memory at a time per process. With a Dask ``client``, the chunks
    are built and written by the workers (``make_chunk`` must then be picklable).
    """
    cq = min(_check_chunk_queries(chunk_queries), max(int(n), 1))     # as in save_zarr
    dtypes = {"query_task": _task_dtype(len(tasks)), "input_tokens": token_dtype,
              "output_tokens": token_dtype, "utility": "float64"}
    w = _Writer(path, models, tasks, n, cq, dtypes)
    try:
        n_chunks = -(-n // cq)
        if client is None:
            for c in range(n_chunks):
                uninterrupted(_write_one, str(w.tmp), c, cq, n, make_chunk)
        else:
            futures = client.map(_write_one, [str(w.tmp)] * n_chunks, range(n_chunks), [cq] * n_chunks,
                                 [n] * n_chunks, [make_chunk] * n_chunks, pure=False)
            client.gather(futures)
        w.commit()
    except BaseException:
        w.abort()
        raise
    return open_zarr(path)


def _write_one(tmp: str, c: int, cq: int, n: int, make_chunk) -> int:
    zarr = _zarr()
    r0, r1 = c * cq, min(n, (c + 1) * cq)
    inst = make_chunk(c, r0, r1)
    if inst.n_queries != r1 - r0:
        raise ChunkLayoutError(f"chunk {c}: the generator made {inst.n_queries} queries, expected {r1 - r0}")
    with writing_into(tmp):
        g = zarr.open_group(tmp, mode="r+")
        for name in ARRAYS:
            arr = _every_chunk(g[name])
            vals = getattr(inst, name)
            if arr.dtype.kind == "u" and vals.size and (vals.max() >= np.iinfo(arr.dtype).max
                                                       or np.any(vals != np.round(vals))):
                raise ChunkValueError(f"{name}[{r0 + int(np.argmax(vals.ravel() != np.round(vals.ravel())))}]",
                                      f"does not fit the store's {arr.dtype} column")
            arr[r0:r1] = vals.astype(arr.dtype)
    return r1 - r0


# ------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class ChunkRef:
    """One chunk of a store, small enough to ship to a worker: ``queries r0..r1-1``."""

    path: str
    index: int
    r0: int
    r1: int
    validated: bool = False
    """Set once every chunk passed validation in this solve: later reads skip the checks."""
    restriction: str | None = None
    """A restriction's label (``solvers.restrictions``): the chunk restricted to its options."""

    def load(self) -> Instance:
        """The chunk as an in-memory :class:`~robatch_opt.Instance` (validated unless it was)."""
        inst = open_zarr(self.path).chunk(self.index, validate=not self.validated)
        if self.restriction is None:
            return inst
        from ..solvers.restrictions import build_restriction
        return build_restriction(inst, self.restriction)


def _trusted(models, tasks, options, data: dict[str, np.ndarray]) -> Instance:
    """An :class:`~robatch_opt.Instance` of arrays validated before, built without the checks.

    The fields are what the constructor would store for the same arrays (read-only, int64
    tasks, float64 numbers), so every derived array and cost is bit-identical.
    """
    inst = object.__new__(Instance)
    for name, value in (("models", models), ("tasks", tasks), ("options", options)):
        object.__setattr__(inst, name, value)
    for name, dtype in (("query_task", np.int64), ("input_tokens", np.float64), ("output_tokens", np.float64),
                        ("utility", np.float64)):
        a = data[name] if data[name].dtype == dtype else data[name].astype(dtype)
        a = np.ascontiguousarray(a)
        a.flags.writeable = False
        object.__setattr__(inst, name, a)
    return inst


_FIELD = re.compile(r"^(query_task|input_tokens|output_tokens|utility|query)\[(\d+)(.*)$")


def _globalize(exc: InstanceError, r0: int, source: str) -> ChunkValueError:
    """The same error with the chunk's row index turned into the global query index, and
    the store named (as the README promises for every chunk error)."""
    m = _FIELD.match(exc.field)
    msg = exc.detail
    if not m:
        return ChunkValueError(exc.field, msg, source)
    return ChunkValueError(f"{m.group(1)}[{r0 + int(m.group(2))}{m.group(3)}",
                           re.sub(r"\bquery (\d+)\b", lambda q: f"query {r0 + int(q.group(1))}", msg), source)


class ChunkedInstance:
    """A lazily read instance stored in chunks (``ro.load("x.zarr")``).

    Holds the models and tasks (small) and opens the per-query arrays on demand; never
    reads more than one chunk at a time. Pass it to :func:`robatch_opt.solve` with a Dask
    ``client`` (or to :func:`robatch_opt.distributed.solve`).

    Attributes
    ----------
    path : pathlib.Path
    models, tasks, options
        As on :class:`~robatch_opt.Instance`.
    n_queries, chunk_queries, n_chunks : int
    """

    def __init__(self, path):
        self.path = Path(path)
        zarr = _zarr()
        src = str(self.path)
        if not self.path.is_dir():
            if self.path.exists():
                raise FormatError(f"{src}: not a directory (a .zarr store is a directory)")
            raise FileNotFoundError(f"{src}: no such store")
        try:
            g = zarr.open_group(src, mode="r")
            attrs = dict(g.attrs)
        except Exception as exc:                      # zarr raises several types for a bad group
            raise FormatError(f"{src}: not a readable zarr group ({type(exc).__name__}: {exc})") from exc
        if attrs.get("format") != ZARR_FORMAT:
            raise FormatError(f"{src}: group attribute `format` is {attrs.get('format')!r}, "
                              f"not a robatch_opt chunked instance ({ZARR_FORMAT!r})")
        try:
            self.models = tuple(Model(m["name"], m["price_in"], m["price_out"], m["context_window"],
                                      tuple(m["batch_sizes"])) for m in attrs["models"])
            self.tasks = tuple(Task(t["name"], t["system_tokens"]) for t in attrs["tasks"])
            self.n_queries = int(attrs["n_queries"])
            self.chunk_queries = _check_chunk_queries(attrs["chunk_queries"])
        except (KeyError, TypeError) as exc:
            raise FormatError(f"{src}: missing or mistyped group attribute ({exc!r})") from exc
        self.options = tuple((k, b) for k, m in enumerate(self.models) for b in m.batch_sizes)
        if [list(o) for o in self.options] != attrs.get("options"):
            raise FormatError(f"{src}: attribute `options` disagrees with the models' batch sizes")
        self._group = g
        self._check_layout()

    # ------------------------------------------------------------------ shape
    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_queries // self.chunk_queries)

    @property
    def option_model(self) -> np.ndarray:
        return np.array([k for k, _ in self.options], dtype=np.int64)

    @property
    def option_batch(self) -> np.ndarray:
        return np.array([b for _, b in self.options], dtype=np.int64)

    def bounds(self, c: int) -> tuple[int, int]:
        """Queries ``r0..r1-1`` of chunk ``c``."""
        r0 = c * self.chunk_queries
        return r0, min(self.n_queries, r0 + self.chunk_queries)

    def refs(self) -> list[ChunkRef]:
        """One :class:`ChunkRef` per chunk, in query order."""
        # Absolute: a worker's working directory is not the client's (a relative store was
        # "no such store" on workers started elsewhere).
        where = os.path.abspath(self.path)
        return [ChunkRef(where, c, *self.bounds(c)) for c in range(self.n_chunks)]

    def _check_layout(self) -> None:
        src = str(self.path)
        want = {"query_task": (self.n_queries,), "input_tokens": (self.n_queries,),
                "output_tokens": (self.n_queries, self.n_models), "utility": (self.n_queries, self.n_options)}
        for name in sorted(self._group.array_keys()):
            # A typo (`utilty`) would otherwise be ignored and the real array reported missing.
            if name not in want:
                raise ChunkLayoutError(f"{src}: array `{name}` is not part of a robatch_opt instance"
                                       f"{did_you_mean(name, want)}")
        for name, shape in want.items():
            try:
                arr = self._group[name]
            except KeyError:
                raise ChunkLayoutError(f"{src}: array `{name}` is missing") from None
            if tuple(arr.shape) != shape:
                raise ChunkLayoutError(f"{src}: array `{name}` has shape {tuple(arr.shape)}, expected {shape} "
                                       f"({self.n_queries} queries, {self.n_models} models, "
                                       f"{self.n_options} options)")
            chunks = tuple(arr.chunks)
            if chunks[0] != self.chunk_queries or chunks[1:] != shape[1:]:
                raise ChunkLayoutError(f"{src}: array `{name}` is chunked {chunks}, expected "
                                       f"{(self.chunk_queries,) + shape[1:]} (chunk_queries = "
                                       f"{self.chunk_queries}; every array must be chunked alike)")

    # ------------------------------------------------------------------ reading
    def _chunk_file(self, name: str, c: int) -> Path:
        key = self.path / name / "c" / str(c)
        return key / "0" if self._group[name].ndim == 2 else key

    def chunk_stamp(self, c: int) -> tuple:
        """The identity of chunk ``c``'s files (modification time, size and inode of each
        array's file): it changes whenever the chunk is rewritten, in place (``a[:] = ...``)
        or by a new store at the same path. Workers key their chunk cache by it."""
        out = []
        for name in ARRAYS:
            try:
                st = self._chunk_file(name, c).stat()
            except OSError:
                out.append(None)
                continue
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def _read(self, name: str, c: int) -> np.ndarray:
        arr = self._group[name]
        key = self._chunk_file(name, c)
        r0, r1 = self.bounds(c)
        if not key.is_file():
            raise ChunkError(str(self.path), name, c, f"(queries {r0}..{r1 - 1}) is missing: no file {key}")
        try:
            return np.asarray(arr[r0:r1])
        except Exception as exc:                    # checksum mismatch, truncated file, bad codec
            raise ChunkError(str(self.path), name, c,
                             f"(queries {r0}..{r1 - 1}) is corrupt: {type(exc).__name__}: {exc}") from exc

    def chunk(self, c: int, *, validate: bool = True) -> Instance:
        """Chunk ``c`` as a validated in-memory :class:`~robatch_opt.Instance` (local indices).

        ``validate=False`` skips the O(n J) value checks; only for a chunk already validated
        (the distributed solver validates every chunk in its first pass, then reads them
        again in every later pass). Missing and corrupt chunks are still detected.

        Raises
        ------
        ChunkError
            The chunk is missing or corrupt (names the store, array, chunk and queries).
        ChunkValueError
            A value is invalid; the field names the global query index.
        """
        if not 0 <= c < self.n_chunks:
            raise IndexError(f"chunk {c} out of range for {self.n_chunks} chunks")
        r0, _ = self.bounds(c)
        data = {name: self._read(name, c) for name in ARRAYS}
        if not validate:
            return _trusted(self.models, self.tasks, self.options, data)
        try:
            return Instance(models=self.models, tasks=self.tasks, **data)
        except ChunkValueError:
            raise
        except InstanceError as exc:
            raise _globalize(exc, r0, str(self.path)) from None

    def iter_chunks(self) -> Iterator[tuple[int, Instance]]:
        """``(r0, chunk instance)`` for every chunk, in order."""
        for c in range(self.n_chunks):
            yield self.bounds(c)[0], self.chunk(c)

    def to_instance(self) -> Instance:
        """Read every chunk into one in-memory :class:`~robatch_opt.Instance` (small stores only)."""
        cat = {name: np.concatenate([self._read(name, c) for c in range(self.n_chunks)]) for name in ARRAYS}
        return Instance(models=self.models, tasks=self.tasks, **cat)     # validated once, global indices

    def __repr__(self) -> str:
        return (f"ChunkedInstance({str(self.path)!r}, n={self.n_queries}, options={self.n_options}, "
                f"chunks={self.n_chunks} x {self.chunk_queries})")


_OPEN: dict[tuple[str, int], ChunkedInstance] = {}


def open_zarr(path) -> ChunkedInstance:
    """Open a store (cached per process by path and metadata time, so tasks reopen cheaply)."""
    p = Path(path)
    try:
        stamp = (p / "zarr.json").stat().st_mtime_ns
    except OSError:
        stamp = -1
    key = (str(p.resolve()), stamp)
    inst = _OPEN.get(key)
    if inst is None:
        inst = ChunkedInstance(p)
        if stamp >= 0:
            _OPEN.clear()           # one store at a time is the common case; keep the cache small
            _OPEN[key] = inst
    return inst
