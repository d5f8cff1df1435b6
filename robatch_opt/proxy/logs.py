"""The observation-log format of the proxy utility model, its loader and its writers.

A log is what a user has observed: which model answered which query how well, alone or
inside a batch. One row per observation.

Columns
-------
=================  ========  =====================================================================
column             type      meaning
=================  ========  =====================================================================
``query_id``       str       Identifier of the query (an integer in JSON Lines is read as its text).
``task``           str       Task of the query (queries of one task share a system prompt).
``model``          str       Model that answered; must be one of the known models (see below).
``batch_size``     int       Number of queries in the prompt that produced the answer (>= 1).
``outcome``        float     Score of the answer in [0, 1]: 0/1 correctness or a graded score.
``input_tokens``   float     Input tokens of the query (without the system prompt), >= 0.
``output_tokens``  float     Output tokens of this answer, >= 0.
``repeat``         int       Optional (default 0): tells apart intentional repeats of the same
                             (query, model, batch size), e.g. several sampled answers.
``feat_<name>``    float     Optional numeric query features, any number of columns.
``embedding``      list      Optional embedding vector of the query: a JSON array of numbers (in
                             CSV, the cell holds the JSON text), the same length in every row.
=================  ========  =====================================================================

A query's features are ``feat_*`` columns (in file order) followed by the embedding.

Files
-----
- **CSV** (``.csv``): a header row with the column names, then one row per observation,
  comma separated (RFC 4180 quoting, as :mod:`csv` writes it).
- **JSON Lines** (``.jsonl``): one JSON object per line whose keys are the column names.
- **Parquet is not supported**: reading it needs ``pyarrow`` (or ``fastparquet``), a large
  dependency the package does not otherwise need; convert with any tool to CSV or JSON Lines.

Writers emit floats with :func:`repr` (shortest text that reads back to the same bits), so a
log written and read again is identical (:meth:`ObservationLog.equals`).

Validation (each a specific :class:`LogError`, a ``ValueError``, naming column, row and file)
------------------------------------------------------------------------------------------------
- :class:`MissingColumnError`: a required column is absent (or a JSON Lines row lacks a key);
- :class:`UnknownColumnError`: a column that is not in the format (a typo would otherwise be
  silently ignored);
- :class:`UnknownModelError`: a model that is not in ``models`` (default: the bundled Qwen3
  and Gemma3 pools);
- :class:`OutcomeRangeError`: an outcome outside [0, 1];
- :class:`DuplicateRowError`: two rows with the same (query_id, model, batch_size, repeat);
- :class:`InconsistentQueryError`: one query with two different tasks, input token counts or
  feature vectors;
- :class:`LogValueError`: a malformed value: not a number (text, a boolean, null, a nested
  list), NaN, a non-integer or < 1 batch size (in a file, ``batch_size`` and ``repeat`` are
  integer literals: ``2.0`` is refused), negative tokens, an empty name, an embedding of the
  wrong length.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

from .._files import open_atomic
from .._validate import describe, did_you_mean, fmt_num, integer, numeric_array
from ..errors import FormatError
from ..instance import Instance, Model

__all__ = [
    "ObservationLog", "load_logs", "save_logs", "LogError", "MissingColumnError", "UnknownColumnError",
    "UnknownModelError", "OutcomeRangeError", "DuplicateRowError", "InconsistentQueryError",
    "LogValueError", "REQUIRED_COLUMNS", "FEATURE_PREFIX", "known_model_names",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Columns every log must have.
REQUIRED_COLUMNS = ("query_id", "task", "model", "batch_size", "outcome", "input_tokens", "output_tokens")
#: Prefix of numeric feature columns.
FEATURE_PREFIX = "feat_"
_OPTIONAL = ("repeat", "embedding")
_SUFFIX_FORMAT = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


# ------------------------------------------------------------------------------- errors
class LogError(FormatError):
    """An observation log is malformed; the message names the column, the row and the file.

    Attributes
    ----------
    column : str
        The offending column (``""`` when the whole file is at fault).
    row : int or None
        0-based data row (``None`` when no single row is at fault).
    source : str or None
        File and line, when the log was read from a file.
    """

    def __init__(self, column: str, message: str, *, row: int | None = None, source: str | None = None):
        self.column = column
        self.row = row
        self.source = source
        self.detail = message
        where = f"`{column}`" if row is None else f"`{column}[{row}]`"
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{where}: {message}")

    def located(self, source: str) -> "LogError":
        """The same error with a file location prepended (same class)."""
        err = type(self)(self.column, self.detail, row=self.row, source=source)
        return err


class MissingColumnError(LogError):
    """A required column is absent (or a JSON Lines row lacks one of its keys)."""


class UnknownColumnError(LogError):
    """A column that is not part of the log format."""


class UnknownModelError(LogError):
    """A row names a model that is not in the known models."""


class OutcomeRangeError(LogError):
    """An outcome outside [0, 1]."""


class DuplicateRowError(LogError):
    """Two rows share (query_id, model, batch_size, repeat)."""


class InconsistentQueryError(LogError):
    """One query_id appears with two different tasks, input token counts or features."""


class LogValueError(LogError):
    """A value that cannot be what its column says (not a number, NaN, negative, ...)."""


def known_model_names() -> tuple[str, ...]:
    """Names of the bundled pools' models: the default ``models`` of :func:`load_logs`."""
    from ..workloads.retention import load_facts     # bundled data lives with the workloads
    pools = load_facts()["pools"]
    return tuple(name for pool in pools.values() for name in pool)


def _model_names(models) -> tuple[str, ...] | None:
    if models is None:
        return known_model_names()
    if isinstance(models, Instance):
        return tuple(m.name for m in models.models)
    if isinstance(models, str):
        return (models,)
    return tuple(m.name if isinstance(m, Model) else str(m) for m in models)


# ------------------------------------------------------------------------ the log itself
def _log_errors(field: str, idx: tuple, message: str) -> LogValueError:
    """Error factory of the shared type checks (robatch_opt._validate): column and row."""
    return LogValueError(field, message, row=idx[0] if idx else None)


def _is_name_type(t: type) -> bool:
    # An integer id in JSON Lines is read as its text; booleans, floats and null are refused.
    return issubclass(t, (str, int, np.integer)) and not issubclass(t, (bool, np.bool_))


def _str_array(values, column: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "U":
        arr = values
    elif isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        arr = values.astype(str)
    else:
        if isinstance(values, np.ndarray):
            values = values.tolist()
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
            raise LogValueError(column, f"must be a list of strings, got {describe(values)}")
        values = list(values)
        if not all(_is_name_type(t) for t in set(map(type, values))):
            i = next(i for i, v in enumerate(values) if not _is_name_type(type(v)))
            raise LogValueError(column, f"must be a string, got {describe(values[i])}", row=i)
        arr = np.array([str(v) for v in values], dtype=str) if values else np.zeros(0, dtype="<U1")
    if arr.ndim != 1:
        raise LogValueError(column, f"must be 1-D, got shape {arr.shape}")
    empty = np.char.str_len(arr) == 0 if arr.size else np.zeros(0, bool)
    if empty.any():
        raise LogValueError(column, "must be a non-empty string", row=int(np.argmax(empty)))
    return arr


def _float_array(values, column: str, n: int, *, lo: float | None = None) -> np.ndarray:
    # Strings, booleans, null and nested lists are refused, naming the first offending row.
    arr = numeric_array(values, column, _log_errors).astype(np.float64, copy=False)
    if arr.shape != (n,):
        raise LogValueError(column, f"must have {n} values (one per row), got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise LogValueError(column, f"must be finite, got {fmt_num(arr[i])}", row=i)
    if lo is not None:
        bad = arr < lo
        if bad.any():
            i = int(np.argmax(bad))
            raise LogValueError(column, f"must be >= {lo:g}, got {fmt_num(arr[i], apart_from=lo)}", row=i)
    return arr


def _int_array(values, column: str, n: int, *, lo: int, strict: bool = False) -> np.ndarray:
    # strict (the file readers): an integer literal; else an integral float passes too.
    arr = numeric_array(values, column, _log_errors, integer=True, strict=strict)
    if arr.shape != (n,):
        raise LogValueError(column, f"must have {n} values (one per row), got {arr.shape[0]}")
    bad = arr < lo
    if bad.any():
        i = int(np.argmax(bad))
        raise LogValueError(column, f"must be an integer >= {lo}, got {int(arr[i])}", row=i)
    return arr.astype(np.int64, copy=False)


def _shown(a, b) -> tuple[str, str]:
    """Two differing log values for a message: text quoted, numbers as ``:.6g`` unless that
    would print them alike (then in full)."""
    a, b = (x.item() if isinstance(x, np.generic) else x for x in (a, b))
    if isinstance(a, str) or fmt_num(a) == fmt_num(b):
        return repr(a), repr(b)
    return fmt_num(a), fmt_num(b)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class ObservationLog:
    """A validated observation log (one entry per row; see the module docstring).

    Parameters
    ----------
    query_id, task, model : array_like of str, shape (N,)
    batch_size : array_like of int, shape (N,)
    outcome : array_like of float, shape (N,)
        In [0, 1].
    input_tokens, output_tokens : array_like of float, shape (N,)
    features : array_like of float, shape (N, d), optional
        Query features; ``d = len(feature_names) + embedding_dim``.
    feature_names : sequence of str, optional
        Names of the leading ``feat_*`` columns, without the prefix.
    embedding_dim : int
        Number of trailing feature columns that came from (and are written as) ``embedding``.
    repeat : array_like of int, shape (N,), optional
        Default all 0.
    models : sequence of str or Model, Instance, or None
        Known models; default the bundled Qwen3 and Gemma3 pools.

    Raises
    ------
    LogError
        One of its subclasses (see the module docstring), naming column and row.

    Notes
    -----
    Validation is vectorised: O(N log N) (a sort finds duplicates and groups queries).
    """

    query_id: np.ndarray
    task: np.ndarray
    model: np.ndarray
    batch_size: np.ndarray
    outcome: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    features: np.ndarray = None
    feature_names: tuple = ()
    embedding_dim: int = 0
    repeat: np.ndarray = None
    models: object = None

    def __post_init__(self):
        qid = _str_array(self.query_id, "query_id")
        n = qid.shape[0]
        task = _str_array(self.task, "task")
        model = _str_array(self.model, "model")
        for name, arr in (("task", task), ("model", model)):
            if arr.shape[0] != n:
                raise LogValueError(name, f"must have {n} values (one per row), got {arr.shape[0]}")
        known = _model_names(self.models)
        unknown = ~np.isin(model, np.array(known, dtype=str)) if n else np.zeros(0, bool)
        if unknown.any():
            i = int(np.argmax(unknown))
            # With the default, the user's own models are not errors but a missing argument.
            hint = ("; for models outside the bundled pools pass `models=` (their names, or the Instance)"
                    if self.models is None else "")
            raise UnknownModelError("model", f"unknown model {str(model[i])!r}; known: {list(known)}{hint}", row=i)
        batch = _int_array(self.batch_size, "batch_size", n, lo=1)
        outcome = _float_array(self.outcome, "outcome", n)
        bad = (outcome < 0.0) | (outcome > 1.0)
        if bad.any():
            i = int(np.argmax(bad))
            bound = 0.0 if outcome[i] < 0 else 1.0
            raise OutcomeRangeError("outcome", f"must be in [0, 1], got {fmt_num(outcome[i], apart_from=bound)}",
                                    row=i)
        inp = _float_array(self.input_tokens, "input_tokens", n, lo=0.0)
        out = _float_array(self.output_tokens, "output_tokens", n, lo=0.0)
        rep = np.zeros(n, np.int64) if self.repeat is None else _int_array(self.repeat, "repeat", n, lo=0)

        names = tuple(str(s) for s in self.feature_names)
        for pos, s in enumerate(names):
            if not s:
                raise LogValueError(f"feature_names[{pos}]", "must be a non-empty name")
        if len(set(names)) != len(names):
            raise LogValueError("feature_names", f"must be unique, got {list(names)}")
        emb = integer(self.embedding_dim, "embedding", _log_errors)
        if emb < 0:
            raise LogValueError("embedding", f"dimension must be >= 0, got {emb}")
        d = len(names) + emb
        def feature_errors(field: str, idx: tuple, message: str) -> LogValueError:
            if len(idx) == 2:                  # name the feature column of a bad entry
                c = idx[1]
                col = FEATURE_PREFIX + names[c] if c < len(names) else f"embedding[{c - len(names)}]"
                return LogValueError(col, message, row=idx[0])
            return _log_errors(field, idx, message)

        feats = np.zeros((n, 0)) if self.features is None else \
            numeric_array(self.features, "features", feature_errors, ndim=2).astype(np.float64, copy=False)
        if feats.shape != (n, d):
            raise LogValueError("features", f"must have shape ({n}, {d}) for {len(names)} named features "
                                            f"and an embedding of {emb}, got {feats.shape}")
        bad = ~np.isfinite(feats)
        if bad.any():
            i, c = (int(v) for v in np.unravel_index(int(np.argmax(bad)), bad.shape))
            col = FEATURE_PREFIX + names[c] if c < len(names) else f"embedding[{c - len(names)}]"
            raise LogValueError(col, f"must be finite, got {float(feats[i, c])!r}", row=i)

        # Duplicates: sort rows by the key and compare neighbours.
        if n:
            _, q_code = np.unique(qid, return_inverse=True)
            _, m_code = np.unique(model, return_inverse=True)
            order = np.lexsort((rep, batch, m_code, q_code))
            key = np.stack([q_code[order], m_code[order], batch[order], rep[order]], axis=1)
            same = (key[1:] == key[:-1]).all(axis=1)
            if same.any():
                pos = int(np.argmax(same))
                first, second = sorted((int(order[pos]), int(order[pos + 1])))
                raise DuplicateRowError(
                    "query_id", f"duplicates row {first}: same (query_id={str(qid[second])!r}, "
                                f"model={str(model[second])!r}, batch_size={int(batch[second])}, "
                                f"repeat={int(rep[second])}); give intentional repeats distinct `repeat` values",
                    row=second)
            # Per-query facts must agree across rows.
            first_row = np.zeros(q_code.max() + 1, np.int64)
            first_row[q_code[::-1]] = np.arange(n)[::-1]           # smallest row of each query
            ref = first_row[q_code]
            for col, arr in (("task", task), ("input_tokens", inp)):
                bad = arr != arr[ref]
                if bad.any():
                    i = int(np.argmax(bad))
                    raise InconsistentQueryError(
                        col, "query {!r} has {} here but {} in row {}".format(
                            str(qid[i]), *_shown(arr[i], arr[ref[i]]), int(ref[i])),
                        row=i)
            if d:
                bad = (feats != feats[ref]).any(axis=1)
                if bad.any():
                    i = int(np.argmax(bad))
                    raise InconsistentQueryError(
                        "features", f"query {str(qid[i])!r} has other feature values than in row {int(ref[i])}",
                        row=i)

        for name, arr in (("query_id", qid), ("task", task), ("model", model), ("batch_size", batch),
                          ("outcome", outcome), ("input_tokens", inp), ("output_tokens", out),
                          ("features", feats), ("repeat", rep)):
            object.__setattr__(self, name, _readonly(np.ascontiguousarray(arr)))
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "embedding_dim", emb)
        object.__setattr__(self, "models", tuple(known))

    # ------------------------------------------------------------------ views
    @property
    def n_rows(self) -> int:
        """Number of observations ``N``."""
        return int(self.query_id.shape[0])

    @property
    def n_features(self) -> int:
        """Feature dimension ``d``."""
        return int(self.features.shape[1])

    @property
    def model_names(self) -> tuple[str, ...]:
        """Models that occur in the log, in order of first occurrence."""
        return _first_occurrence(self.model)

    @property
    def task_names(self) -> tuple[str, ...]:
        """Tasks that occur in the log, in order of first occurrence."""
        return _first_occurrence(self.task)

    def select(self, mask) -> "ObservationLog":
        """The log restricted to the rows where ``mask`` is True (or to the given row indices)."""
        idx = np.asarray(mask)
        return ObservationLog(self.query_id[idx], self.task[idx], self.model[idx], self.batch_size[idx],
                              self.outcome[idx], self.input_tokens[idx], self.output_tokens[idx],
                              self.features[idx], self.feature_names, self.embedding_dim,
                              self.repeat[idx], self.models)

    def queries(self):
        """One entry per distinct query, in order of first occurrence.

        Returns
        -------
        query_ids : ndarray of str, shape (q,)
        task : ndarray of str, shape (q,)
        features : ndarray, shape (q, d)
        input_tokens : ndarray, shape (q,)
        row_query : ndarray of int, shape (N,)
            Index into the returned arrays of every row's query.
        """
        uniq, first, inv = np.unique(self.query_id, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")               # first-occurrence order
        rank = np.empty_like(order)
        rank[order] = np.arange(order.shape[0])
        rows = first[order]
        return (self.query_id[rows], self.task[rows], self.features[rows], self.input_tokens[rows],
                rank[inv.ravel()])

    def outcome_matrix(self, model_names: Sequence[str] | None = None, batch_size: int = 1):
        """Mean observed outcome of every query on every model at one batch size.

        Parameters
        ----------
        model_names : sequence of str, optional
            Column order; default :attr:`model_names`.
        batch_size : int
            Only rows at this batch size are used (default 1: the unbatched base utility).

        Returns
        -------
        query_ids, task, features : as :meth:`queries` (every query of the log)
        outcomes : ndarray, shape (q, K)
            Mean outcome over repeats; NaN where the pair was not observed at ``batch_size``.
        """
        names = self.model_names if model_names is None else tuple(model_names)
        qids, task, feats, _, row_q = self.queries()
        col = {m: k for k, m in enumerate(names)}
        use = self.batch_size == batch_size
        k_of_row = np.array([col.get(str(m), -1) for m in self.model[use]], dtype=np.int64) \
            if use.any() else np.zeros(0, np.int64)
        keep = k_of_row >= 0
        q = row_q[use][keep]
        k = k_of_row[keep]
        K, nq = len(names), qids.shape[0]
        total = np.bincount(q * K + k, weights=self.outcome[use][keep], minlength=nq * K).reshape(nq, K)
        count = np.bincount(q * K + k, minlength=nq * K).reshape(nq, K)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return qids, task, feats, mean

    def equals(self, other: "ObservationLog") -> bool:
        """True when both logs hold the same rows, bit for bit, in the same order."""
        if not isinstance(other, ObservationLog):
            return False
        if (self.feature_names, self.embedding_dim) != (other.feature_names, other.embedding_dim):
            return False
        return all(np.array_equal(getattr(self, f), getattr(other, f))
                   for f in ("query_id", "task", "model", "batch_size", "outcome", "input_tokens",
                             "output_tokens", "features", "repeat"))

    # ---------------------------------------------------------------- writers
    def _columns(self) -> list[str]:
        return (list(REQUIRED_COLUMNS) + ["repeat"] + [FEATURE_PREFIX + s for s in self.feature_names]
                + (["embedding"] if self.embedding_dim else []))

    def _records(self) -> Iterable[list]:
        nf = len(self.feature_names)
        qid, task, model = self.query_id.tolist(), self.task.tolist(), self.model.tolist()
        batch, rep = self.batch_size.tolist(), self.repeat.tolist()
        outc, inp, out = self.outcome.tolist(), self.input_tokens.tolist(), self.output_tokens.tolist()
        feats = self.features.tolist()
        for i in range(self.n_rows):
            rec = [qid[i], task[i], model[i], batch[i], outc[i], inp[i], out[i], rep[i]] + feats[i][:nf]
            if self.embedding_dim:
                rec.append(feats[i][nf:])
            yield rec

    def to_csv(self, path: PathLike) -> None:
        """Write the log as CSV (floats by ``repr``: lossless)."""
        with open_atomic(path, "w") as fh:          # whole or not at all
            w = csv.writer(fh)
            w.writerow(self._columns())
            has_emb = bool(self.embedding_dim)
            for rec in self._records():
                if has_emb:
                    rec[-1] = json.dumps(rec[-1])
                w.writerow([repr(v) if isinstance(v, float) else v for v in rec])

    def to_jsonl(self, path: PathLike) -> None:
        """Write the log as JSON Lines (floats by ``repr``: lossless)."""
        cols = self._columns()
        with open_atomic(path, "w") as fh:          # whole or not at all
            for rec in self._records():
                fh.write(json.dumps(dict(zip(cols, rec)), allow_nan=False))
                fh.write("\n")

    def save(self, path: PathLike, *, format: str | None = None) -> None:
        """Write as CSV or JSON Lines, chosen by the suffix (``.csv``, ``.jsonl``) or ``format``."""
        fmt = _format_of(path, format)
        (self.to_csv if fmt == "csv" else self.to_jsonl)(path)

    def __repr__(self) -> str:
        return (f"ObservationLog(rows={self.n_rows}, models={list(self.model_names)}, "
                f"tasks={list(self.task_names)}, features={self.n_features})")


def _first_occurrence(arr: np.ndarray) -> tuple[str, ...]:
    if arr.shape[0] == 0:
        return ()
    uniq, first = np.unique(arr, return_index=True)
    return tuple(str(uniq[i]) for i in np.argsort(first, kind="stable"))


def _format_of(path: PathLike, format: str | None) -> str:
    if format is not None:
        if format not in ("csv", "jsonl"):
            raise LogError("format", f"must be 'csv' or 'jsonl', got {format!r}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        raise LogError("format", "Parquet is not supported (it would need pyarrow); "
                                 "write the log as CSV or JSON Lines", source=str(path))
    if suffix not in _SUFFIX_FORMAT:
        raise LogError("format", f"cannot tell the format from suffix {suffix!r}; use one of "
                                 f"{sorted(_SUFFIX_FORMAT)} or pass format=", source=str(path))
    return _SUFFIX_FORMAT[suffix]


# --------------------------------------------------------------------------------- readers
def _check_header(columns: Sequence[str], source: str) -> None:
    seen = set()
    for c in columns:
        if c in seen:
            raise LogValueError(c, "column appears twice in the header", source=source)
        seen.add(c)
        if c not in REQUIRED_COLUMNS and c not in _OPTIONAL and not (
                c.startswith(FEATURE_PREFIX) and len(c) > len(FEATURE_PREFIX)):
            hint = did_you_mean(c, list(REQUIRED_COLUMNS) + list(_OPTIONAL))
            raise UnknownColumnError(c, f"is not a column of the log format{hint} (required: "
                                        f"{list(REQUIRED_COLUMNS)}; optional: {list(_OPTIONAL)} and "
                                        f"{FEATURE_PREFIX}<name>)", source=source)
    for c in REQUIRED_COLUMNS:
        if c not in seen:
            raise MissingColumnError(c, f"required column is missing (columns present: {list(columns)})",
                                     source=source)


def _embedding_matrix(cells: list, n: int, parse_json: bool, path: str, line_of) -> np.ndarray:
    vecs = []
    dim = None
    for i, cell in enumerate(cells):
        v = cell
        if parse_json:
            try:
                v = json.loads(cell)
            except json.JSONDecodeError as exc:
                raise LogValueError("embedding", f"must be a JSON array of numbers: {exc.msg}",
                                    row=i, source=line_of(i)) from None
        if not isinstance(v, list):
            raise LogValueError("embedding", f"must be an array of numbers, got {describe(v)}",
                                row=i, source=line_of(i))
        bad = next((x for x in v if isinstance(x, bool) or not isinstance(x, (int, float))), v)
        if bad is not v:
            raise LogValueError("embedding", f"must be an array of numbers, got {describe(bad)} in it",
                                row=i, source=line_of(i))
        if dim is None:
            dim = len(v)
        elif len(v) != dim:
            raise LogValueError("embedding", f"has length {len(v)}, but row 0 has {dim}",
                                row=i, source=line_of(i))
        vecs.append(v)
    if dim == 0:
        raise LogValueError("embedding", "must not be empty", row=0, source=line_of(0))
    return np.array(vecs, dtype=np.float64).reshape(n, dim or 0)


def _build(columns: dict, path: str, line_of, models, parse_json_embedding: bool) -> ObservationLog:
    n = len(columns["query_id"])
    feat_cols = [c for c in columns if c.startswith(FEATURE_PREFIX)]
    parts = []
    try:
        # Types first, by the files' rule: a number is a number (not text, a boolean or null)
        # and an integer column holds integer literals (what the writers write).
        for c in ("batch_size", "repeat"):
            if c in columns:
                columns[c] = numeric_array(columns[c], c, _log_errors, integer=True, strict=True)
        for c in ("outcome", "input_tokens", "output_tokens"):
            columns[c] = numeric_array(columns[c], c, _log_errors)
        for c in feat_cols:
            parts.append(_float_array(columns[c], c, n)[:, None])
    except LogError as err:
        raise err.located(line_of(err.row) if err.row is not None else path) from None
    emb_dim = 0
    if "embedding" in columns:
        emb = _embedding_matrix(columns["embedding"], n, parse_json_embedding, path, line_of)
        emb_dim = emb.shape[1]
        parts.append(emb)
    feats = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))
    try:
        return ObservationLog(
            query_id=columns["query_id"], task=columns["task"], model=columns["model"],
            batch_size=columns["batch_size"], outcome=columns["outcome"],
            input_tokens=columns["input_tokens"], output_tokens=columns["output_tokens"],
            features=feats, feature_names=tuple(c[len(FEATURE_PREFIX):] for c in feat_cols),
            embedding_dim=emb_dim, repeat=columns.get("repeat"), models=models)
    except LogError as err:
        raise err.located(line_of(err.row) if err.row is not None else path) from None


def _read_csv(path: str, models) -> ObservationLog:
    with open(path, newline="", encoding="utf-8-sig") as fh:     # -sig: Excel's "CSV UTF-8"
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise MissingColumnError("query_id", "the file is empty (no header row)", source=path) from None
        _check_header(header, path)
        rows = list(reader)
    width = len(header)
    for i, r in enumerate(rows):
        if len(r) != width:
            raise LogValueError("", f"has {len(r)} fields, the header has {width}", row=i,
                                source=f"{path}:{i + 2}")
    columns = {c: [r[pos] for r in rows] for pos, c in enumerate(header)}
    # CSV cells are text: numbers are parsed here (text that is no number stays text, for the
    # validators to name its row), ids and names stay strings.
    for c in ("batch_size", "repeat", "outcome", "input_tokens", "output_tokens") + tuple(
            c for c in header if c.startswith(FEATURE_PREFIX)):
        if c in columns:
            columns[c] = [_num(v) for v in columns[c]]
    return _build(columns, path, lambda i: f"{path}:{i + 2}", models, parse_json_embedding=True)


def _num(text: str):
    """An integer literal as int, another number as float, anything else as the text itself."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _read_jsonl(path: str, models) -> ObservationLog:
    records = []
    lines = []
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LogValueError("", f"line is not valid JSON: {exc.msg}", row=len(records),
                                    source=f"{path}:{lineno}") from None
            if not isinstance(rec, dict):
                raise LogValueError("", f"line must be a JSON object, got {type(rec).__name__}",
                                    row=len(records), source=f"{path}:{lineno}")
            records.append(rec)
            lines.append(lineno)
    if not records:
        raise MissingColumnError("query_id", "the file holds no rows", source=path)
    header = list(records[0])
    _check_header(header, f"{path}:{lines[0]}")
    keys = set(header)
    for i, rec in enumerate(records):
        if set(rec) != keys:
            missing = sorted(keys - set(rec))
            if missing:
                raise MissingColumnError(missing[0], "key is missing in this row (row 0 has it)",
                                         row=i, source=f"{path}:{lines[i]}")
            extra = sorted(set(rec) - keys)[0]
            _check_header(header + [extra], f"{path}:{lines[i]}")
            raise UnknownColumnError(extra, "key is not in row 0", row=i, source=f"{path}:{lines[i]}")
    # Values stay as JSON typed them: _build refuses text, booleans and null among the numbers.
    columns = {c: [rec[c] for rec in records] for c in header}
    return _build(columns, path, lambda i: f"{path}:{lines[i]}", models, parse_json_embedding=False)


def load_logs(path: PathLike, *, models=None, format: str | None = None) -> ObservationLog:
    """Read and validate an observation log (CSV or JSON Lines).

    Parameters
    ----------
    path : str or path-like
        ``.csv`` or ``.jsonl`` (``.ndjson``) file; see the module docstring for the columns.
    models : sequence of str or Model, Instance, or None
        Models the log may name. Default: the bundled Qwen3 and Gemma3 pools
        (:func:`known_model_names`).
    format : {"csv", "jsonl"}, optional
        Overrides the suffix.

    Returns
    -------
    ObservationLog

    Raises
    ------
    LogError
        A subclass per kind of bad input (module docstring), naming the column, the row and
        ``file:line``. A missing file raises :class:`OSError`.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.TemporaryDirectory()
    >>> p = os.path.join(d.name, "log.csv")
    >>> with open(p, "w") as fh:
    ...     _ = fh.write("query_id,task,model,batch_size,outcome,input_tokens,output_tokens,feat_len\\n"
    ...                  "q1,GSM8K,Qwen3-8B,1,1,36,40,0.5\\nq1,GSM8K,Qwen3-8B,4,0,36,41,0.5\\n")
    >>> log = load_logs(p)
    >>> log.n_rows, log.model_names, log.feature_names
    (2, ('Qwen3-8B',), ('len',))
    >>> with open(p, "a") as fh:
    ...     _ = fh.write("q2,GSM8K,Qwen3-8B,1,1.5,30,40,0.1\\n")
    >>> load_logs(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    robatch_opt.proxy.logs.OutcomeRangeError: ...log.csv:4: `outcome[2]`: must be in [0, 1], got 1.5
    >>> d.cleanup()
    """
    path_s = os.fspath(path)
    fmt = _format_of(path_s, format)
    # Passed on as given (None: the bundled pools), so that an unknown model's error can say
    # whether the caller named the models or left the default.
    if models is not None and not isinstance(models, (Instance, str)):
        models = tuple(models)                  # a generator is read once, here
    return _read_csv(path_s, models) if fmt == "csv" else _read_jsonl(path_s, models)


def save_logs(log: ObservationLog, path: PathLike, *, format: str | None = None) -> None:
    """Write ``log`` as CSV or JSON Lines (see :meth:`ObservationLog.save`)."""
    log.save(path, format=format)
