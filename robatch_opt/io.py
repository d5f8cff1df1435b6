"""Saving and loading instances: lossless JSON and a compact binary ``.npz`` form.

The format is chosen by the file suffix (``.json`` or ``.npz``) unless ``format=`` is given.

JSON (``robatch_opt.instance/1``) is one object::

    {"format": "robatch_opt.instance/1",
     "models": [{"name", "price_in", "price_out", "context_window", "batch_sizes"}, ...],
     "tasks": [{"name", "system_tokens"}, ...],
     "options": [[model index, batch size], ...],      # informative, checked on load
     "n_queries": n,
     "query_task": [n ints], "input_tokens": [n numbers],
     "output_tokens": [n lists of K numbers], "utility": [n lists of J numbers]}

Floats are written by ``repr`` (what :mod:`json` does), which reads back to the same bits.

NPZ is :func:`numpy.savez` (never pickled: it is read with ``allow_pickle=False``) holding
the same model and task metadata as a JSON string in the array ``meta`` and one array per
per-query field. Integer-valued token counts and task indices are stored in the narrowest
unsigned integer type that holds them exactly (they read back as the same float64 bits),
which is what makes the form compact; utilities stay float64.

Errors: a file that cannot be read as an instance (malformed, truncated, wrong format key,
missing or mistyped field: a string, boolean or null where a number belongs, a float where
an integer belongs, a nested list, a ragged row) raises
:class:`~robatch_opt.errors.FormatError` whose one-line message names the file, the field
and the first offending index; readable but invalid contents (a utility above 1, an array
of the wrong shape...) raise the :class:`~robatch_opt.errors.InstanceError` of the
:class:`~robatch_opt.Instance` constructor, with the file prefixed; a missing file raises
:class:`OSError`.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Union

import numpy as np

from ._files import open_atomic
from ._validate import (ErrorFactory, describe, did_you_mean, format_errors, integer, no_unknown_keys, number, numeric_array,
                        string)
from .errors import FormatError, InstanceError, UnknownOptionError
from .instance import Instance, Model, Task

__all__ = ["save", "load", "format_of", "instance_to_json", "instance_from_json", "INSTANCE_FORMAT",
           "SUFFIXES"]

PathLike = Union[str, "os.PathLike[str]"]

#: Value of the ``format`` key; the part after ``/`` is the version.
INSTANCE_FORMAT = "robatch_opt.instance/1"
_FORMAT_PREFIX = "robatch_opt.instance/"

#: Suffix -> format name understood by :func:`save` and :func:`load`.
SUFFIXES = {".json": "json", ".npz": "npz"}

# Per-query arrays (of both forms), with the nesting depths accepted on load (output tokens
# may be one column shared by every model).
_NPZ_ARRAYS = {"query_task": 1, "input_tokens": 1, "output_tokens": (2, 1), "utility": 2}
#: Every top-level field of the JSON form (the metadata of ``_meta`` and the arrays).
_JSON_KEYS = ("format", "models", "tasks", "options", "n_queries", *_NPZ_ARRAYS)


# ---------------------------------------------------------------------------- front doors
#: Keywords of :func:`save` for a ``.zarr`` store (those of ``distributed.save_zarr``).
ZARR_OPTIONS = ("chunk_queries",)


def save(inst: Instance, path: PathLike, *, format: str | None = None, compress: bool = False,
         **zarr_options) -> Path:
    """Write an instance to ``path`` (``.json``, ``.npz`` or a ``.zarr`` store).

    Parameters
    ----------
    inst : Instance
    path : str or path-like
        Target file; its suffix chooses the format unless ``format`` is given. The file is
        written to a temporary name in the same directory and renamed
        (:func:`robatch_opt._files.open_atomic`), so a failure never leaves a truncated file
        under ``path`` and an existing file keeps its mode.
    format : {"json", "npz"}, optional
        Overrides the suffix.
    compress : bool
        npz only: use :func:`numpy.savez_compressed` (smaller, slower; utilities drawn from
        continuous distributions barely compress).
    **zarr_options
        ``.zarr`` only (a chunked store, see :func:`robatch_opt.distributed.save_zarr`):
        ``chunk_queries``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FormatError
        Unknown suffix or format name.

    Examples
    --------
    >>> import os, tempfile
    >>> import robatch_opt as ro
    >>> inst = ro.Instance(models=[ro.Model("m", 0.1, 0.2, 4096, (1, 2))], tasks=[ro.Task("t", 100)],
    ...                    query_task=[0, 0], input_tokens=[10, 20], output_tokens=[5, 5],
    ...                    utility=[[0.7, 0.6], [0.1, 1 / 3]])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     back = ro.load(ro.save(inst, os.path.join(d, "x.json")))
    >>> back.models == inst.models and bool((back.utility == inst.utility).all())
    True
    """
    # Unknown keywords and store-only ones given for a file were ignored (new-user audit).
    unknown = sorted(set(zarr_options) - set(ZARR_OPTIONS))
    if unknown:
        raise UnknownOptionError(f"`save`: unknown option {unknown[0]!r}{did_you_mean(unknown[0], ZARR_OPTIONS)}; "
                                 f"valid: format, compress, {', '.join(ZARR_OPTIONS)}")
    if format is None and _is_zarr(path):          # chunked store: robatch_opt.distributed.store
        from .distributed.store import save_zarr
        return save_zarr(inst, path, **zarr_options)
    if zarr_options:
        raise InstanceError(next(iter(zarr_options)), f"applies only to a chunked .zarr store; {os.fspath(path)} "
                                                      f"is written as one file")
    if not isinstance(inst, Instance):
        raise TypeError(f"`inst`: must be a robatch_opt.Instance, got {type(inst).__name__}")
    path = Path(path)
    fmt = format_of(path, format)
    with open_atomic(path, "wb") as fh:        # whole or not at all; the mode follows the umask
        if fmt == "json":
            fh.write(instance_to_json(inst).encode("utf-8"))
        else:
            _write_npz(inst, fh, compress=compress)
    return path


def load(path: PathLike, *, format: str | None = None) -> Instance:
    """Read an instance written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        ``.json``, ``.npz``, or ``.zarr`` (a chunked store, returned as a lazily read
        :class:`robatch_opt.distributed.ChunkedInstance`; needs the ``[dask]`` extra).
    format : {"json", "npz"}, optional
        Overrides the suffix.

    Returns
    -------
    Instance

    Raises
    ------
    FormatError
        Unknown suffix; malformed or truncated file; wrong or unsupported ``format`` key;
        a missing or mistyped field. The message names the file and the field.
    InstanceError
        The file is well formed but its contents are not a valid instance.
    OSError
        The file cannot be opened (e.g. it does not exist).
    """
    if format is None and _is_zarr(path):          # chunked store, read lazily
        from .distributed.store import open_zarr
        return open_zarr(path)
    path = Path(path)
    fmt = format_of(path, format)
    if fmt == "json":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")           # a byte-order mark is not JSON
        except UnicodeDecodeError as exc:
            raise FormatError(f"{path}: not a JSON text (byte {exc.start} is not UTF-8)") from exc
        return instance_from_json(text, source=str(path))
    return _read_npz(path)


# ---------------------------------------------------------------------------------- JSON
def instance_to_json(inst: Instance) -> str:
    """The JSON text of an instance (format ``robatch_opt.instance/1``); see the module notes."""
    d = _meta(inst)
    d.update({
        "query_task": inst.query_task.tolist(),
        "input_tokens": inst.input_tokens.tolist(),
        "output_tokens": inst.output_tokens.tolist(),
        "utility": inst.utility.tolist(),
    })
    # Validated instances hold only finite numbers, so strict JSON is always possible.
    return json.dumps(d, allow_nan=False, separators=(",", ":"))


def instance_from_json(text: str, *, source: str = "instance JSON") -> Instance:
    """Inverse of :func:`instance_to_json`.

    Parameters
    ----------
    text : str
    source : str
        Named in error messages (the file name, when reading a file).

    Raises
    ------
    FormatError, InstanceError
        As :func:`load`.
    """
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{source}: malformed or truncated JSON at line {exc.lineno} column {exc.colno} "
                          f"(char {exc.pos}): {exc.msg}") from exc
    except (TypeError, RecursionError) as exc:
        raise FormatError(f"{source}: not a JSON text: {exc}") from exc
    if not isinstance(d, dict):
        raise FormatError(f"{source}: expected a JSON object at the top level, got {_type_name(d)}")
    try:
        models, tasks = _check_meta(d, source)          # the format first: a plan file says so
        no_unknown_keys(d, _JSON_KEYS, source, "the instance format")
        arrays = {name: _field(d, name, source) for name in _NPZ_ARRAYS}
        return _build(models, tasks, arrays, d, source, format_errors(source))
    except InstanceError as err:
        raise err.located(source) from err


# ----------------------------------------------------------------------------------- NPZ
def _write_npz(inst: Instance, fh, *, compress: bool) -> None:
    meta = _meta(inst)
    arrays: dict[str, np.ndarray] = {}
    encodings: dict[str, str] = {}
    for name in _NPZ_ARRAYS:
        arr = getattr(inst, name)
        small = _narrow(arr, allow=name != "utility")
        arrays[name] = small
        encodings[name] = f"{small.dtype.str} as {arr.dtype.str}"
    meta["encoding"] = encodings
    writer = np.savez_compressed if compress else np.savez
    writer(fh, meta=np.array(json.dumps(meta, allow_nan=False)), **arrays)


def _narrow(arr: np.ndarray, *, allow: bool) -> np.ndarray:
    """The narrowest unsigned integer copy of ``arr`` that casts back to the same bits.

    Only non-negative integer values qualify, and not ``-0.0`` (whose sign an integer
    cannot keep); anything else is returned unchanged.
    """
    if not allow or arr.size == 0:
        return arr
    if arr.dtype.kind == "f":
        if not (np.all(arr == np.floor(arr)) and not np.signbit(arr).any()):
            return arr
    top = float(arr.max())
    if arr.min() < 0:
        return arr
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return arr.astype(dt)
    return arr


def _read_npz(path: Path) -> Instance:
    src = str(path)
    # Look at the magic bytes first: np.load would otherwise guess (and talk about pickles).
    with open(path, "rb") as fh:          # OSError (e.g. a missing file) propagates as is
        head = fh.read(6)
    if not head:
        raise FormatError(f"{src}: file is empty (not a robatch_opt npz archive)")
    if head.startswith(b"\x93NUMPY"):
        raise FormatError(f"{src}: is a single .npy array, not a robatch_opt npz archive")
    if head.startswith(b"PK\x05\x06"):       # a zip's end record first: an archive of nothing
        raise FormatError(f"{src}: npz archive holds no arrays (not a robatch_opt instance)")
    if not head.startswith(b"PK\x03\x04"):
        raise FormatError(f"{src}: not a zip archive (starts with {head[:4]!r}), so not a robatch_opt npz")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"{src}: npz archive is truncated or corrupt: {_one_line(exc)}") from exc
    with npz:
        try:
            if "meta" not in npz.files:
                raise FormatError(f"{src}: npz archive has no `meta` array (not a robatch_opt instance)")
            meta_arr = _npz_array(npz, "meta", src)
            if meta_arr.dtype.kind != "U" or meta_arr.shape != ():
                raise FormatError(f"{src}: npz array `meta` must be a JSON string, got "
                                  f"{meta_arr.dtype} of shape {meta_arr.shape}")
            try:
                d = json.loads(str(meta_arr[()]))
            except json.JSONDecodeError as exc:
                raise FormatError(f"{src}: npz array `meta` is malformed JSON at char {exc.pos}: "
                                  f"{exc.msg}") from exc
            if not isinstance(d, dict):
                raise FormatError(f"{src}: npz array `meta` must hold a JSON object, got {_type_name(d)}")
            models, tasks = _check_meta(d, src)
            known = ("meta", *_NPZ_ARRAYS)
            for name in npz.files:
                # A typo (`utilty`) would otherwise be ignored and the real array reported missing.
                if name not in known:
                    raise FormatError(f"{src}: npz array `{name}` is not part of a robatch_opt instance"
                                      f"{did_you_mean(name, known)}")
            arrays = {}
            for name in _NPZ_ARRAYS:
                if name not in npz.files:
                    raise FormatError(f"{src}: npz archive is missing array `{name}`")
                arrays[name] = _npz_array(npz, name, src)
        except InstanceError as err:
            raise err.located(src) from err
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"{src}: npz archive is truncated or corrupt: {_one_line(exc)}") from exc
    try:
        return _build(models, tasks, arrays, d, src, format_errors(src, "npz array "))
    except InstanceError as err:
        raise err.located(src) from err


def _npz_array(npz, name: str, src: str) -> np.ndarray:
    try:
        return npz[name]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise FormatError(f"{src}: npz array `{name}` cannot be read: "
                          f"{_one_line(exc)}") from exc


# ------------------------------------------------------------------------- shared helpers
def _is_zarr(path: PathLike) -> bool:
    """A ``.zarr`` path: a chunked store (:mod:`robatch_opt.distributed.store`)."""
    return Path(path).suffix.lower() == ".zarr"


def format_of(path: PathLike, format: str | None = None) -> str:
    """The format (``"json"`` or ``"npz"``) :func:`save` and :func:`load` use for ``path``.

    Raises
    ------
    FormatError
        ``format`` is not a known name, or (without ``format``) the suffix is unknown.

    Examples
    --------
    >>> format_of("runs/x.NPZ"), format_of("x.dat", "json")
    ('npz', 'json')
    """
    path = Path(path)
    if format is not None:
        if format not in SUFFIXES.values():
            raise FormatError(f"`format`: unknown format {format!r}; valid: {', '.join(SUFFIXES.values())}")
        return format
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        # save and load also take a .zarr store (a directory; format_of is not asked for it).
        raise FormatError(f"{path}: unknown file suffix {path.suffix or '(none)'!r}; "
                          f"use {', '.join(SUFFIXES)} or .zarr")
    return SUFFIXES[suffix]


def _meta(inst: Instance) -> dict[str, Any]:
    return {
        "format": INSTANCE_FORMAT,
        "models": [{"name": m.name, "price_in": m.price_in, "price_out": m.price_out,
                    "context_window": m.context_window, "batch_sizes": list(m.batch_sizes)}
                   for m in inst.models],
        "tasks": [{"name": t.name, "system_tokens": t.system_tokens} for t in inst.tasks],
        "options": [list(o) for o in inst.options],
        "n_queries": inst.n_queries,
    }


def _field(d: dict, key: str, where: str, *, prefix: str = ""):
    try:
        return d[key]
    except KeyError:
        raise FormatError(f"{where}: missing field `{prefix}{key}`") from None


def _check_meta(d: dict, src: str) -> tuple[list[Model], list[Task]]:
    """Check the format key and build models and tasks (their own checks raise InstanceError)."""
    if "format" not in d:
        raise FormatError(f"{src}: missing field `format` (not a robatch_opt instance)")
    fmt = d["format"]
    if fmt != INSTANCE_FORMAT:
        shown = repr(fmt) if isinstance(fmt, str) and len(fmt) <= 60 else describe(fmt)
        if isinstance(fmt, str) and fmt.startswith(_FORMAT_PREFIX):
            raise FormatError(f"{src}: unsupported instance format version {shown}; "
                              f"this robatch_opt reads {INSTANCE_FORMAT!r}")
        raise FormatError(f"{src}: `format` is {shown}, not a robatch_opt instance ({INSTANCE_FORMAT!r})")
    # Types are the format's business (FormatError, by position in the file); values are the
    # constructors' (InstanceError: a negative price, decreasing batch sizes...).
    err = format_errors(src)
    models = []
    for pos, kw in enumerate(_records(d, "models", ("name", "price_in", "price_out", "context_window",
                                                    "batch_sizes"), src)):
        at = f"models[{pos}]."
        sizes = numeric_array(kw["batch_sizes"], at + "batch_sizes", err, integer=True, strict=True)
        models.append(Model(string(kw["name"], at + "name", err), number(kw["price_in"], at + "price_in", err),
                            number(kw["price_out"], at + "price_out", err),
                            integer(kw["context_window"], at + "context_window", err, strict=True),
                            tuple(sizes.tolist())))
    tasks = [Task(string(kw["name"], f"tasks[{pos}].name", err),
                  number(kw["system_tokens"], f"tasks[{pos}].system_tokens", err))
             for pos, kw in enumerate(_records(d, "tasks", ("name", "system_tokens"), src))]
    return models, tasks


def _records(d: dict, what: str, keys: tuple[str, ...], src: str) -> list[dict[str, Any]]:
    """The list ``d[what]`` of objects, each reduced to ``keys`` (all required)."""
    raw = _field(d, what, src)
    if not isinstance(raw, list):
        raise FormatError(f"{src}: field `{what}` must be a list, got {_type_name(raw)}")
    out = []
    for pos, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise FormatError(f"{src}: `{what}[{pos}]` must be an object, got {_type_name(entry)}")
        no_unknown_keys(entry, keys, src, "the instance format", prefix=f"{what}[{pos}].")
        out.append({key: _field(entry, key, src, prefix=f"{what}[{pos}].") for key in keys})
    return out


def _build(models: list[Model], tasks: list[Task], arrays: dict[str, Any], d: dict, src: str,
           err: ErrorFactory) -> Instance:
    """Type-check the per-query arrays (``err``), build the instance, cross-check the extras."""
    width = {"output_tokens": len(models), "utility": sum(len(m.batch_sizes) for m in models)}
    for name, ndim in _NPZ_ARRAYS.items():
        arr = numeric_array(arrays[name], name, err, ndim=ndim, integer=name == "query_task", strict=True)
        if name in width and arr.shape == (0,):
            arr = arr.reshape(0, width[name])         # JSON cannot say how wide an empty 2-D array is
        arrays[name] = arr
    inst = Instance(models=models, tasks=tasks, **arrays)
    # The informative fields must agree with what the data says, or the file was edited
    # inconsistently (e.g. batch sizes changed without the utility columns).
    meta_err = format_errors(src)
    if "n_queries" in d:
        n = integer(d["n_queries"], "n_queries", meta_err, strict=True)
        if n != inst.n_queries:
            raise FormatError(f"{src}: `n_queries` is {n} but the arrays hold {inst.n_queries} queries")
    if "options" in d:
        stored = numeric_array(d["options"], "options", meta_err, ndim=2, integer=True, strict=True)
        if stored.size and stored.shape[1] != 2:
            raise FormatError(f"{src}: `options`: must be a list of [model index, batch size] pairs, "
                              f"got rows of {stored.shape[1]}")
        if len(stored) != inst.n_options:
            raise FormatError(f"{src}: `options` lists {len(stored)} pairs but the models' batch sizes "
                              f"give {inst.n_options} options")
        differ = np.flatnonzero((stored != np.array(inst.options)).any(axis=1))
        if differ.size:
            j = int(differ[0])
            raise FormatError(f"{src}: `options[{j}]` is {stored[j].tolist()} but the models' batch sizes "
                              f"make option {j} {list(inst.options[j])}")
    return inst


def _type_name(x) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(x), type(x).__name__)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
