"""Loader of RouterArena's cached model results (RouteWorks/RouterArena, ``cached_results/``).

Format
------
A folder with ``cost.json`` (``{model: {"input_token_price_per_million": ..,
"output_token_price_per_million": ..}}``) and one ``<model>.jsonl`` per model (in the folder
or in its ``cached_results/``), one JSON object per line with at least: ``global_index``
(query id ``<sub-task>_<number>``), ``question`` (the full prompt), ``token_usage``
(``input_tokens``, ``output_tokens``: real counts), ``evaluation_result`` (a dict with
``score``). Optional ``success`` (False: the call failed, the outcome is NaN). Other fields
are ignored.

Costs are the real token counts times ``cost.json``'s prices (equal to RouterArena's own
``inference_cost``). Scores are mostly 0 or 1; a few are partial, and a few negative
(``scores="clip"``, the default, clips them to [0, 1] and counts them in
``notes["clipped_scores"]``; ``scores="raise"`` raises :class:`OutcomeRangeError`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Union

import numpy as np

from ._common import assemble, existing, lines_named, number, utf8_text
from ..errors import InstanceError
from .errors import (CostValueError, DuplicateQueryError, EmptyFieldError, InconsistentDataError,
                     MalformedRowError, MissingColumnError, MissingFileError, OutcomeRangeError, PromptFieldError,
                     UnknownPriceError)
from .routing_data import RoutingData

__all__ = ["load_routerarena"]

PathLike = Union[str, "os.PathLike[str]"]


def _price_table(path: Path) -> dict:
    try:
        table = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise MalformedRowError(f"not valid JSON: {exc.msg} (column {exc.colno})", source=path, line=exc.lineno) from None
    if not isinstance(table, dict):
        raise MalformedRowError("must be a JSON object {model: prices}", source=path)
    out = {}
    for m, entry in table.items():
        vals = []
        for key in ("input_token_price_per_million", "output_token_price_per_million"):
            if not isinstance(entry, dict) or key not in entry:
                raise MissingColumnError(f"model {m!r} lacks its price", source=path, column=key)
            x = number(entry[key], source=path, row=None, column=f"{m}.{key}", text_ok=False)
            if x < 0 or (x == 0 and key.startswith("output")):
                # The output price must be > 0: each query's output tokens are its cost over it.
                raise CostValueError(f"must be {'> 0' if key.startswith('output') else '>= 0'}, got {x!r}",
                                     source=path, column=f"{m}.{key}")
            vals.append(x)
        out[m] = tuple(vals)
    return out


def _field(obj: dict, key: str, *, source, row):
    if key not in obj:
        raise MissingColumnError("required field is missing", source=source, row=row, column=key)
    return obj[key]


def _tokens(usage, key, *, source, row) -> float:
    if not isinstance(usage, dict) or key not in usage:
        raise MissingColumnError("required field is missing", source=source, row=row, column=f"token_usage.{key}")
    x = number(usage[key], source=source, row=row, column=f"token_usage.{key}", what="a token count",
               text_ok=False)
    if x < 0:
        raise CostValueError(f"must be >= 0, got {x!r}", source=source, row=row, column=f"token_usage.{key}")
    return x


def load_routerarena(path: PathLike, *, scores: str = "clip") -> RoutingData:
    """Read RouterArena's per-model results into a :class:`RoutingData`.

    Parameters
    ----------
    path : path
        The folder with ``cost.json`` and the ``<model>.jsonl`` files (or ``cached_results/``).
    scores : {"clip", "raise"}
        What to do with a score outside [0, 1] (see the module docstring).

    Returns
    -------
    RoutingData
        Models in file-name order; tasks are the ``global_index`` prefixes (RouterArena's
        sub-tasks) in order of first appearance; a query missing from a model's file is NaN
        there (outcome and cost). The query's own input tokens are the fewest real input
        tokens any model reported minus the system prompt's estimate (characters / 4); each
        model's extra input tokens go into its cost-implied output count, so costs stay exact.

    Raises
    ------
    MissingFileError, MissingColumnError, MalformedRowError, PromptFieldError, OutcomeRangeError,
    CostValueError, UnknownPriceError, DuplicateQueryError, InconsistentDataError
    EmptyFieldError
        An empty ``global_index`` (a MissingColumnError too).
    """
    if scores not in ("clip", "raise"):
        raise InstanceError("scores", f"must be 'clip' or 'raise', got {scores!r}")
    root = existing(path, "RouterArena folder")
    if not root.is_dir():
        raise MissingFileError("must be a folder holding cost.json and <model>.jsonl files", source=root)
    cost_path = root / "cost.json"
    if not cost_path.exists():
        raise MissingFileError("does not exist (the price table)", source=cost_path)
    prices = _price_table(cost_path)
    files = sorted(root.glob("*.jsonl")) or sorted((root / "cached_results").glob("*.jsonl"))
    if not files:
        raise MissingFileError("holds no <model>.jsonl file", source=root)
    models = [f.stem for f in files]
    for f, m in zip(files, models):
        if m not in prices:
            raise UnknownPriceError(f"model {m!r} (from {f.name}) is not in the price table", source=cost_path,
                                    column=m)
    index: dict[str, int] = {}
    prompts, task_of, per_model = [], [], []
    task_names: list[str] = []
    clipped = failed = 0
    for f in files:
        rows = {}
        with utf8_text(f) as fh, lines_named(f, lambda row: row + 1):
            for row, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise MalformedRowError(f"not valid JSON: {exc.msg}", source=f, row=row) from None
                if not isinstance(obj, dict):
                    raise MalformedRowError("must be a JSON object", source=f, row=row)
                qid = _field(obj, "global_index", source=f, row=row)
                if not isinstance(qid, str) or not qid:
                    error = EmptyFieldError if qid == "" else MissingColumnError
                    raise error(f"must be a non-empty string, got {qid!r}", source=f, row=row, column="global_index")
                if qid in rows:
                    raise DuplicateQueryError(f"query {qid!r} duplicates row {rows[qid][0]}", source=f, row=row,
                                              column="global_index")
                question = _field(obj, "question", source=f, row=row)
                if not isinstance(question, str) or not question:
                    raise PromptFieldError(f"must be a non-empty string, got {type(question).__name__}",
                                           source=f, row=row, column="question")
                usage = _field(obj, "token_usage", source=f, row=row)
                t_in = _tokens(usage, "input_tokens", source=f, row=row)
                t_out = _tokens(usage, "output_tokens", source=f, row=row)
                ev = _field(obj, "evaluation_result", source=f, row=row)
                if not isinstance(ev, dict) or "score" not in ev:
                    raise MissingColumnError("required field is missing", source=f, row=row,
                                             column="evaluation_result.score")
                score = number(ev["score"], source=f, row=row, column="evaluation_result.score",
                               error=OutcomeRangeError, what="a score", text_ok=False)
                if not 0.0 <= score <= 1.0:
                    if scores == "raise":
                        raise OutcomeRangeError(f"must be in [0, 1], got {score!r}", source=f, row=row,
                                                column="evaluation_result.score")
                    clipped += 1
                    score = min(max(score, 0.0), 1.0)
                success = obj.get("success", True)
                if not isinstance(success, bool):
                    # "false" (a string) would otherwise count as a successful call.
                    raise MalformedRowError(f"must be true or false (JSON booleans), got {success!r}", source=f,
                                            row=row, column="success")
                if success is False:
                    failed += 1
                    score = math.nan
                rows[qid] = (row, question, t_in, t_out, score)
                if qid not in index:
                    index[qid] = len(prompts)
                    prompts.append(question)
                    name = qid.rsplit("_", 1)[0] if "_" in qid else qid
                    if name not in task_names:
                        task_names.append(name)
                    task_of.append(task_names.index(name))
                elif prompts[index[qid]] != question:
                    raise InconsistentDataError(f"query {qid!r} has a different question than in another model's "
                                                f"file", source=f, row=row, column="question")
        per_model.append(rows)
    n, K = len(prompts), len(models)
    qids = list(index)
    outcome = np.full((n, K), np.nan)
    t_in = np.full((n, K), np.nan)
    t_out = np.full((n, K), np.nan)
    for k, rows in enumerate(per_model):
        for qid, (_, _, a, b, s) in rows.items():
            i = index[qid]
            outcome[i, k], t_in[i, k], t_out[i, k] = s, a, b
    p_in = np.array([prices[m][0] for m in models])
    p_out = np.array([prices[m][1] for m in models])
    cost = (t_in * p_in[None, :] + t_out * p_out[None, :]) / 1e6
    shared = np.nanmin(np.where(np.isnan(t_in), np.inf, t_in), axis=1)
    notes = {"files": [str(f) for f in files], "clipped_scores": clipped, "failed_calls": failed,
             "missing_outcomes": {m: int(np.isnan(outcome[:, k]).sum()) for k, m in enumerate(models)}}
    return assemble(model_names=models, task_names=task_names, task=np.array(task_of, np.int64), prompts=prompts,
                    query_id=qids, outcome=outcome, cost_usd=cost, price_in=p_in, price_out=p_out,
                    source="RouterArena", notes=notes, shared_input_tokens=shared, real_tokens=(t_in, t_out))
