"""Helpers shared by the loaders: paths, numbers, system-prompt detection, assembling RoutingData."""

from __future__ import annotations

import contextlib
import difflib
import math
import os
from pathlib import Path

import numpy as np

from ..errors import InstanceError
from .errors import (CostValueError, DatasetError, MalformedRowError, MissingColumnError, MissingFileError, OutcomeRangeError,
                     UnknownPriceError)
from .routing_data import RoutingData
from .tokens import common_prefix, estimate_tokens, split_costs


def existing(path, what: str) -> Path:
    """``path`` as a Path if it exists; MissingFileError naming it otherwise (InstanceError if
    it is not a path at all)."""
    try:
        p = Path(os.fspath(path))
    except TypeError:
        raise InstanceError("path", f"the {what} must be a str or os.PathLike, got {type(path).__name__}") from None
    if not p.exists():
        raise MissingFileError(f"{what} does not exist", source=p)
    return p


def existing_file(path, what: str) -> Path:
    """``path`` as a Path if it is a file; MissingFileError naming it otherwise."""
    p = existing(path, what)
    if p.is_dir():
        raise MissingFileError(f"{what} is a folder, not a file", source=p)
    return p


@contextlib.contextmanager
def utf8_text(path: Path):
    """Open ``path`` as UTF-8 text (for the csv and json modules); bytes that are not UTF-8
    raise MalformedRowError naming the file instead of a bare UnicodeDecodeError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:   # -sig: Excel's "CSV UTF-8"
            yield fh
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.start + 1]
        raise MalformedRowError(f"is not UTF-8 text ({exc.reason}: byte {bad!r}); save it as UTF-8",
                                source=path) from None


def csv_header(reader, path: Path) -> list[str]:
    """The header row of a CSV ``reader`` (MissingColumnError if the file is empty)."""
    try:
        return next(reader)
    except StopIteration:
        raise MissingColumnError("file is empty (no header)", source=path) from None


def refuse_repeated_columns(header: list[str], path: Path) -> None:
    """MalformedRowError naming a column the header repeats (its cells would overwrite each
    other). Called after the format's own column checks, so that a file of another format
    is named as such first."""
    seen = set()
    for c in header:
        if c in seen:
            raise MalformedRowError("the header names this column twice", source=path, column=c)
        seen.add(c)


def csv_rows(reader, header: list[str], path: Path, lines: dict | None = None):
    """``(row, cells)`` of the data rows (0-based, counting blank lines, which are skipped as
    every CSV reader does); MalformedRowError for a row with another number of cells.
    ``lines``, if given, receives ``row -> 1-based line of the file where the row starts``
    (quoted cells may span lines, so rows and lines differ; see :func:`lines_named`)."""
    end = reader.line_num
    for row, cells in enumerate(reader):
        start, end = end + 1, reader.line_num
        if lines is not None:
            lines[row] = start
        if not cells:
            continue
        if len(cells) != len(header):
            raise MalformedRowError(f"has {len(cells)} cells, the header {len(header)}", source=path, row=row,
                                    line=start)
        yield row, cells


@contextlib.contextmanager
def lines_named(path: Path, line_of):
    """Inside, a :class:`DatasetError` about a row of ``path`` gains the row's line in the
    file (``line_of(row)``), so that its message points where an editor opens it."""
    try:
        yield
    except DatasetError as err:
        if err.line is not None or err.row is None or err.source != str(path):
            raise
        line = line_of(err.row)
        if line is None:
            raise
        raise err.at_line(line) from None


def number(text, *, source, row, column, error=CostValueError, what="a number", text_ok: bool = True) -> float:
    """A finite float from a CSV cell (``text_ok``: a cell is text) or a JSON or Python value
    (``text_ok=False``: a number, never a string); ``error`` names file, row, column."""
    if isinstance(text, bool) or (not text_ok and isinstance(text, (str, bytes))):
        raise error(f"must be {what}, got {text!r}", source=source, row=row, column=column)
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise error(f"must be {what}, got {text!r}", source=source, row=row, column=column) from None
    if not math.isfinite(x):
        raise error(f"must be finite, got {text!r}", source=source, row=row, column=column)
    return x


def cost_cell(text, *, source, row, column) -> float:
    x = number(text, source=source, row=row, column=column, what="a cost in USD")
    if x < 0:
        raise CostValueError(f"must be >= 0, got {text!r}", source=source, row=row, column=column)
    return x


def outcome_cell(text, *, source, row, column) -> float:
    """An outcome in [0, 1]; an empty cell is NaN (not observed)."""
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return float("nan")
    x = number(text, source=source, row=row, column=column, error=OutcomeRangeError, what="an outcome in [0, 1]")
    if not 0.0 <= x <= 1.0:
        raise OutcomeRangeError(f"must be in [0, 1], got {text!r}", source=source, row=row, column=column)
    return x


def prices_for(models, table: dict, *, source, table_source=None) -> tuple[np.ndarray, np.ndarray]:
    """Input and output prices (USD per million tokens) of ``models`` from ``table``.

    Parameters
    ----------
    models : sequence of str
        The data's models, in column order.
    table : mapping of model to (input, output)
    source : str or Path
        The data file: named when the package's own table lacks one of its models.
    table_source : str or Path, optional
        The user's price table (``"prices"`` for the argument, a JSON file's path): named by
        the errors about its entries. None: ``table`` is the package's own.

    Raises
    ------
    UnknownPriceError
        A model the table does not list (with the closest name the table does list), or, for
        a user's table, a key that matches no model but is close to one (a likely typo).
    CostValueError
        An entry that is not a pair of numbers, a negative price, or a zero output price.
    """
    where = source if table_source is None else table_source
    if table_source is not None:
        check_price_keys(table, models, source=table_source)
    p_in, p_out = [], []
    for m in models:
        if m not in table:
            close = difflib.get_close_matches(m, [str(k) for k in table], n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {sorted(map(str, table))})"
            raise UnknownPriceError(f"model {m!r} of the data is not in the price table{hint}", source=where,
                                    column=m)
        pin, pout = price_pair(table[m], m, source=where)
        p_in.append(pin)
        p_out.append(pout)
    return np.array(p_in), np.array(p_out)


def price_pair(pair, model, *, source) -> tuple[float, float]:
    """One price table entry checked: a pair (input >= 0, output > 0) in USD per million tokens."""
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
        raise CostValueError(f"price of model {model!r} must be a pair (input, output) in USD per "
                             f"million tokens, got {pair!r}", source=source, column=model)
    out = []
    for side, value in zip(("input", "output"), pair):
        x = number(value, source=source, row=None, column=model, text_ok=False,
                   what=f"a price in USD per million tokens ({side} of model {model!r})")
        if x < 0 or (side == "output" and x == 0):
            # Costs are split into input and output parts by the output price (tokens.py).
            raise CostValueError(f"{side} price of model {model!r} must be {'> 0' if side == 'output' else '>= 0'}"
                                 f", got {value!r}", source=source, column=model)
        out.append(float(x))
    return out[0], out[1]


def check_price_keys(table, models, *, source) -> None:
    """Refuse a key of a user's price table that names no model of the data but is close to
    one that it does not price (a typo, which would otherwise be ignored silently). Keys far
    from every model stay allowed: one table may price several logs' models."""
    models = [str(m) for m in models]
    for key in table:
        if key in models:
            continue
        close = [m for m in difflib.get_close_matches(str(key), models, n=3, cutoff=0.8) if m not in table]
        if close:
            raise UnknownPriceError(f"model {key!r} of the price table is not a model of the data; did you mean "
                                    f"{close[0]!r}?", source=source, column=str(key))


def split_prompts(prompts: list[str], task: np.ndarray, n_tasks: int) -> tuple[list[str], list[str]]:
    """Per task the detected system prompt, per query its own text."""
    system = []
    for t in range(n_tasks):
        system.append(common_prefix([prompts[i] for i in np.flatnonzero(task == t)]))
    question = [p[len(system[t]):] for p, t in zip(prompts, task.tolist())]
    return system, question


def assemble(*, model_names, task_names, task, prompts, query_id, outcome, cost_usd, price_in, price_out,
             source, notes, contaminated=None, shared_input_tokens=None, real_tokens=None) -> RoutingData:
    """Split prompts, estimate tokens, split costs so that the instance reproduces them, build RoutingData.

    ``shared_input_tokens`` (n,): real input tokens every model saw at least (system prompt
    included); when given, the query's own tokens are that minus the system prompt's estimate.
    ``real_tokens``: the source's own (input, output) counts, each (n, K), kept as
    ``RoutingData.real_input_tokens`` / ``real_output_tokens``.
    """
    task = np.asarray(task, np.int64)
    system, question = split_prompts(prompts, task, len(task_names))
    s_est = estimate_tokens(system)
    if shared_input_tokens is None:
        l_est = estimate_tokens(question)
    else:
        s_est = np.minimum(s_est, _task_min(np.asarray(shared_input_tokens, np.float64), task, len(task_names)))
        l_est = np.asarray(shared_input_tokens, np.float64) - s_est[task]
    s, l, o, n_capped = split_costs(cost_usd, task, price_in, price_out, s_est, l_est,
                                   model_names=model_names)
    notes = dict(notes)
    notes["token_estimates_capped"] = n_capped
    return RoutingData(model_names=tuple(model_names), task_names=tuple(task_names), task=task,
                       question=question, system_prompt=tuple(system), query_id=query_id, outcome=outcome,
                       cost_usd=cost_usd, price_in=price_in, price_out=price_out, system_tokens=s,
                       input_tokens=l, output_tokens=o, contaminated=contaminated, source=source, notes=notes,
                       real_input_tokens=None if real_tokens is None else real_tokens[0],
                       real_output_tokens=None if real_tokens is None else real_tokens[1])


def _task_min(x: np.ndarray, task: np.ndarray, T: int) -> np.ndarray:
    out = np.full(T, np.inf)
    np.minimum.at(out, task, x)
    return np.where(np.isfinite(out), out, 0.0)
