"""Loader of RouterBench rows (Hu et al., 2024): 11 models, per-query correctness and real cost.

Format (as redistributed by RouterDC, ``datasets/routerbench_zs/*.csv``)
-----------------------------------------------------------------------
``sample_id`` (unique id), ``prompt`` (a Python list literal of strings, normally one: the full
prompt, few-shot examples included; 8 ARC rows list the same prompt twice and were billed
for both, so parts are joined by a blank line and counted in ``notes["multi_part_prompts"]``), ``eval_name`` (the task), then per model ``<model>``
(correctness, a float in [0, 1]; empty = not observed), ``<model>|total_cost`` (USD, input
plus output), optionally ``<model>|model_response``; optionally ``oracle_model_to_route_to``
and an unnamed index column (``""``). Models are the names with a ``|total_cost`` column.
"""

from __future__ import annotations

import ast
import csv
import math
import os
import sys
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from ..errors import InstanceError
from ._common import (assemble, cost_cell, csv_header, csv_rows, existing, existing_file, lines_named,
                      outcome_cell, prices_for, refuse_repeated_columns, utf8_text)
from .errors import (DuplicateQueryError, EmptyFieldError, InconsistentDataError, MalformedRowError,
                     MissingColumnError, MissingFileError, PromptFieldError, UnknownColumnError)
from .prices import PRICES_PER_MTOK
from .routing_data import RoutingData

__all__ = ["load_routerbench"]

PathLike = Union[str, "os.PathLike[str]"]
_REQUIRED = ("sample_id", "prompt", "eval_name")
_OPTIONAL = ("", "oracle_model_to_route_to")
_COST, _RESPONSE = "|total_cost", "|model_response"


def _paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        p = existing(paths, "RouterBench path")
        if not p.is_dir():
            return [p]
        found = sorted(p.glob("*.csv"))
        if not found:
            raise MissingFileError("RouterBench folder holds no *.csv file", source=p)
        return found
    if isinstance(paths, (bytes, dict)) or not hasattr(paths, "__iter__"):
        raise InstanceError("paths", f"must be a path, a folder or a list of paths, got {type(paths).__name__}")
    out = [existing_file(p, "RouterBench file") for p in paths]
    if not out:
        raise MissingColumnError("no RouterBench file given", column="paths")
    seen = {}
    for p in out:
        key = p.resolve()
        if key in seen:                    # each row would come back renamed (`id#2`)
            raise InconsistentDataError(f"is given twice (also as {seen[key]})", source=p, column="paths")
        seen[key] = p
    return out


def _source_label(files: list[Path]) -> str:
    """``RoutingData.source``: the format and the files (a user's own log is no "RouterBench")."""
    names = [f.name for f in files]
    shown = ", ".join(names[:3]) + (f", ... ({len(names) - 3} more)" if len(names) > 3 else "")
    return f"RouterBench format: {shown}"


def _models_of(header: list[str], path: Path) -> list[str]:
    for col in _REQUIRED:
        if col not in header:
            raise MissingColumnError("required column is missing", source=path, column=col)
    models = [c[:-len(_COST)] for c in header if c.endswith(_COST)]
    if not models:
        raise MissingColumnError("no `<model>|total_cost` column", source=path, column="<model>|total_cost")
    known = set(_REQUIRED) | set(_OPTIONAL) | set(models) | {m + _COST for m in models} | {m + _RESPONSE for m in models}
    unknown = [c for c in header if c not in known]
    if unknown:
        # Name the column that is wrong: a model's outcome column is unknown only because its
        # cost column is missing, which may be among the unknown under a typo (`m|total_cst`).
        c = next((c for c in unknown if "|" in c), unknown[0])
        hint = ("a model's columns are `<model>`, `<model>|total_cost` and optionally `<model>|model_response`"
                if "|" in c else f"if {c!r} is a model, its `{c}{_COST}` column is missing")
        raise UnknownColumnError(f"is not a RouterBench column ({hint})", source=path, column=c)
    for m in models:
        if m not in header:
            raise MissingColumnError(f"model {m!r} has a cost column but no outcome column", source=path, column=m)
    return models


def _prompt(cell: str, *, source, row) -> tuple[str, int]:
    """The prompt text and its number of parts (a few rows list the same prompt twice and were
    billed for both, so the parts are kept, joined by a blank line)."""
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise PromptFieldError("must be a Python list literal of strings", source=source, row=row,
                               column="prompt") from None
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise PromptFieldError(f"must be a non-empty list of strings, got {type(value).__name__}"
                               + (f" {value!r}"[:80] if isinstance(value, list) else ""),
                               source=source, row=row, column="prompt")
    return "\n\n".join(value), len(value)


def load_routerbench(paths: PathLike | Sequence[PathLike], *, prices: dict | None = None,
                     duplicates: str = "suffix") -> RoutingData:
    """Read RouterBench CSV files into one :class:`RoutingData`.

    Parameters
    ----------
    paths : path or sequence of paths
        CSV files, or a folder (every ``*.csv`` in it, sorted by name). All files must have
        the same models.
    prices : mapping of model to (input, output) USD per million tokens, optional
        Default :data:`robatch_opt.datasets.prices.PRICES_PER_MTOK` (RouterBench's own
        prices; only the split of each real cost into input and output parts uses them).
    duplicates : {"suffix", "raise"}
        A ``sample_id`` seen before: ``"suffix"`` (default) keeps the row under the id
        ``<sample_id>#2`` (``#3``, ...) and counts it in ``notes["duplicate_ids_renamed"]``;
        ``"raise"`` raises :class:`DuplicateQueryError`. (The ARC-Challenge training split
        repeats 7 ids: each pair is one scored row and one double-prompt row with every
        outcome empty, billed for both copies.)

    Returns
    -------
    RoutingData
        Tasks are the ``eval_name`` values in order of appearance; each task's system prompt
        is its queries' common prefix (the few-shot examples of ARC-Challenge and Winogrande;
        none for MBPP). ``cost_usd`` is RouterBench's ``total_cost``, unchanged; the token
        split follows :mod:`robatch_opt.datasets.tokens`. Empty outcome cells are NaN and
        counted per model in ``notes["missing_outcomes"]``.

    Raises
    ------
    MissingFileError, MissingColumnError, EmptyFieldError, UnknownColumnError, PromptFieldError,
    OutcomeRangeError, CostValueError, UnknownPriceError, DuplicateQueryError, InconsistentDataError
        Each naming the file, the 0-based data row and the column (EmptyFieldError: an empty
        ``sample_id`` or ``eval_name``; CostValueError also for an empty cost of an answered
        query: a model that did not answer has both cells empty, loaded as NaN).
    MalformedRowError
        A row with another number of cells than the header, a header naming a column twice,
        a file that is not UTF-8.
    InstanceError
        ``paths`` is not a path or a list of paths; ``duplicates`` is not "suffix" or "raise".

    Examples
    --------
    >>> import robatch_opt as ro
    >>> data = ro.datasets.load_routerbench("../shared/data/real/routerbench")   # doctest: +SKIP
    >>> data.n_queries, data.n_models                                          # doctest: +SKIP
    (2225, 11)
    """
    files = _paths(paths)
    csv.field_size_limit(sys.maxsize)
    models: list[str] | None = None
    task_names: list[str] = []
    task, prompts, qids, outcome, cost = [], [], [], [], []
    where: dict[str, tuple] = {}
    multi_part = renamed = 0
    if duplicates not in ("suffix", "raise"):
        raise InstanceError("duplicates", f"must be 'suffix' or 'raise', got {duplicates!r}")
    for path in files:
        lines: dict[int, int] = {}
        with utf8_text(path) as fh, lines_named(path, lines.get):
            reader = csv.reader(fh)
            header = csv_header(reader, path)
            file_models = _models_of(header, path)
            refuse_repeated_columns(header, path)
            if models is None:
                models = file_models
            elif set(file_models) != set(models):
                raise InconsistentDataError(f"models {sorted(set(file_models) ^ set(models))} are not in every file",
                                            source=path)
            col = {c: j for j, c in enumerate(header)}
            for row, cells in csv_rows(reader, header, path, lines):
                qid = cells[col["sample_id"]]
                if not qid:
                    raise EmptyFieldError("empty query id", source=path, row=row, column="sample_id")
                if qid in where:
                    f0, r0, l0 = where[qid][0]
                    if duplicates == "raise":
                        raise DuplicateQueryError(f"duplicates {f0}:{l0} (row {r0}, {qid!r})", source=path, row=row,
                                                  column="sample_id")
                    where[qid].append((path, row, lines[row]))
                    renamed += 1
                    qid = f"{qid}#{len(where[qid])}"
                else:
                    where[qid] = [(path, row, lines[row])]
                name = cells[col["eval_name"]]
                if not name:
                    raise EmptyFieldError("empty task name", source=path, row=row, column="eval_name")
                if name not in task_names:
                    task_names.append(name)
                task.append(task_names.index(name))
                text, parts = _prompt(cells[col["prompt"]], source=path, row=row)
                multi_part += parts > 1
                prompts.append(text)
                qids.append(qid)
                o_row = [outcome_cell(cells[col[m]], source=path, row=row, column=m) for m in models]
                outcome.append(o_row)
                # A model that did not answer a query (empty outcome) may have no cost either:
                # NaN, as RoutingData keeps unobserved pairs. An answered query needs its cost.
                cost.append([math.nan if (math.isnan(o) and not cells[col[m + _COST]].strip())
                             else cost_cell(cells[col[m + _COST]], source=path, row=row, column=m + _COST)
                             for m, o in zip(models, o_row)])
    if not qids:
        raise MalformedRowError("holds no data row (only a header)", source=files[0] if len(files) == 1 else
                                files[0].parent)
    p_in, p_out = prices_for(models, PRICES_PER_MTOK if prices is None else prices, source=files[0],
                              table_source=None if prices is None else "prices")
    outcome = np.array(outcome, dtype=np.float64).reshape(len(qids), len(models))
    cost = np.array(cost, dtype=np.float64).reshape(len(qids), len(models))
    notes = {"files": [str(p) for p in files], "multi_part_prompts": multi_part,
             "duplicate_ids_renamed": renamed,
             "missing_outcomes": {m: int(np.isnan(outcome[:, k]).sum()) for k, m in enumerate(models)}}
    return assemble(model_names=models, task_names=task_names, task=np.array(task, np.int64), prompts=prompts,
                    query_id=qids, outcome=outcome, cost_usd=cost, price_in=p_in, price_out=p_out,
                    source=_source_label(files), notes=notes)
