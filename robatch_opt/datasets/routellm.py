"""Loader of RouteLLM's evaluation responses (Ong et al., 2024): GPT-4-1106 vs Mixtral-8x7B.

Format (``routellm/evals/``)
---------------------------
- ``mmlu_responses/mmlu_<domain>.csv``: ``prompt``, then one column per model holding
  ``True``/``False`` correctness (empty = not observed);
- ``gsm8k_responses.csv``: the same, plus ``<model>_response`` (the model's answer text);
- ``mmlu_contaminated_prompts.jsonl``, ``gsm8k_contaminated_prompts.jsonl``: one JSON
  object per line whose ``eval_prompt`` is a prompt RouteLLM excludes as contaminated.

Costs
-----
The source has none, so they are computed from token counts and published prices
(:data:`robatch_opt.datasets.prices.PRICES_PER_MTOK`: gpt-4-1106-preview $10 / $30 per
million input / output tokens, OpenAI's price list; Mixtral-8x7B-Instruct-v0.1 $0.60 / $0.60,
Together AI's, the price RouterBench's real costs imply for the same model). Tokens follow
the stated rule (characters / 4, :mod:`robatch_opt.datasets.tokens`): input from the prompt;
output from the model's response where the file has it (GSM8K), else
:data:`MMLU_OUTPUT_TOKENS` (the MMLU prompts end in ``Answer:`` and are graded on one letter).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Union

import numpy as np

from ._common import (assemble, csv_header, csv_rows, existing, lines_named, outcome_cell, prices_for,
                      refuse_repeated_columns, split_prompts, utf8_text)
from .errors import (DuplicateQueryError, InconsistentDataError, MalformedRowError, MissingColumnError,
                     MissingFileError, OutcomeRangeError, PromptFieldError, UnknownColumnError)
from .prices import PRICES_PER_MTOK
from .routing_data import RoutingData
from .tokens import CHARS_PER_TOKEN, estimate_tokens

__all__ = ["load_routellm", "MMLU_OUTPUT_TOKENS"]

PathLike = Union[str, "os.PathLike[str]"]
#: Output tokens assumed where the file holds no response text (MMLU: one answer letter).
MMLU_OUTPUT_TOKENS = 1.0
_RESPONSE = "_response"
_BOOL = {"True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}


def _outcome(cell: str, *, source, row, column) -> float:
    if cell in _BOOL:
        return _BOOL[cell]
    try:
        return outcome_cell(cell, source=source, row=row, column=column)
    except OutcomeRangeError:
        # Every column but `prompt` and `<model>_response` is a model's correctness in this
        # format: an extra column (an id, say) lands here, so say so.
        raise OutcomeRangeError(f"must be True, False, a number in [0, 1] or empty, got {cell!r} (in RouteLLM's "
                                "format every column but `prompt` and `<model>_response` is a model's "
                                "correctness)", source=source, row=row, column=column) from None


def _contaminated(path: Path) -> set[str]:
    if not path.exists():
        return set()
    out = set()
    with utf8_text(path) as fh, lines_named(path, lambda row: row + 1):
        for row, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MalformedRowError(f"not valid JSON: {exc.msg}", source=path, row=row) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("eval_prompt"), str):
                raise MissingColumnError("needs a string `eval_prompt`", source=path, row=row, column="eval_prompt")
            out.add(obj["eval_prompt"])
    return out


def _read_file(path: Path):
    lines: dict[int, int] = {}
    with utf8_text(path) as fh, lines_named(path, lines.get):
        reader = csv.reader(fh)
        header = csv_header(reader, path)
        if "prompt" not in header:
            raise MissingColumnError("required column is missing", source=path, column="prompt")
        refuse_repeated_columns(header, path)
        models = [c for c in header if c != "prompt" and not c.endswith(_RESPONSE)]
        if not models:
            raise MissingColumnError("no model column", source=path)
        for c in header:
            if c.endswith(_RESPONSE) and c[:-len(_RESPONSE)] not in models:
                raise UnknownColumnError("a response column without its model's correctness column",
                                         source=path, column=c)
        col = {c: j for j, c in enumerate(header)}
        rows = []
        for row, cells in csv_rows(reader, header, path, lines):
            prompt = cells[col["prompt"]]
            if not prompt:
                raise PromptFieldError("empty prompt", source=path, row=row, column="prompt")
            outcome = [_outcome(cells[col[m]], source=path, row=row, column=m) for m in models]
            resp = [cells[col[m + _RESPONSE]] if m + _RESPONSE in col else None for m in models]
            rows.append((prompt, outcome, resp))
    return models, rows


def load_routellm(path: PathLike, *, drop_contaminated: bool = False, prices: dict | None = None) -> RoutingData:
    """Read RouteLLM's MMLU and/or GSM8K responses into a :class:`RoutingData`.

    Parameters
    ----------
    path : path
        One CSV file (``mmlu_<domain>.csv`` or ``gsm8k_responses.csv``), or the folder that
        holds ``mmlu_responses/`` and ``gsm8k_responses.csv`` (both are read).
    drop_contaminated : bool
        False (default): every prompt is kept and the contaminated ones are flagged in
        :attr:`RoutingData.contaminated`. True: they are dropped (their count is in
        ``notes["dropped_contaminated"]``).
    prices : mapping of model to (input, output) USD per million tokens, optional

    Returns
    -------
    RoutingData
        Tasks ``mmlu_<domain>`` (one per file) and ``gsm8k``; query ids ``<task>:<row>``.
        ``cost_usd`` is computed (see the module docstring), so the instance's cost identity
        holds by construction.

    Raises
    ------
    MissingFileError, MissingColumnError, UnknownColumnError, PromptFieldError,
    OutcomeRangeError, UnknownPriceError, DuplicateQueryError, InconsistentDataError
        Each naming the file, the 0-based data row and the column.
    MalformedRowError
        A row with another number of cells than the header, a header naming a column twice,
        a line of a contamination file that is not JSON, a file that is not UTF-8.
    InstanceError
        ``path`` is not a path.
    """
    root = existing(path, "RouteLLM path")
    csv.field_size_limit(sys.maxsize)
    if root.is_dir():
        mmlu = sorted((root / "mmlu_responses").glob("mmlu_*.csv"))
        gsm = root / "gsm8k_responses.csv"
        files = mmlu + ([gsm] if gsm.exists() else [])
        if not files:
            raise MissingFileError("holds neither mmlu_responses/mmlu_*.csv nor gsm8k_responses.csv", source=root)
        cont_dirs = [root]
    else:
        files = [root]
        cont_dirs = [root.parent, root.parent.parent]
    flagged = {"mmlu": set(), "gsm8k": set()}
    for kind in flagged:
        for d in cont_dirs:
            flagged[kind] |= _contaminated(d / f"{kind}_contaminated_prompts.jsonl")
    models = None
    task_names, task, prompts, qids, outcome, out_tok, cont = [], [], [], [], [], [], []
    for f in files:
        file_models, rows = _read_file(f)
        if models is None:
            models = file_models
        elif set(file_models) != set(models):
            raise InconsistentDataError(f"models {sorted(set(file_models) ^ set(models))} are not in every file",
                                        source=f)
        name = "gsm8k" if f.stem.startswith("gsm8k") else f.stem
        kind = "gsm8k" if name == "gsm8k" else "mmlu"
        if name in task_names:
            raise DuplicateQueryError(f"task {name!r} is read twice", source=f)
        task_names.append(name)
        order = [file_models.index(m) for m in models]
        for row, (prompt, o, resp) in enumerate(rows):
            task.append(len(task_names) - 1)
            prompts.append(prompt)
            qids.append(f"{name}:{row}")
            outcome.append([o[j] for j in order])
            out_tok.append([MMLU_OUTPUT_TOKENS if resp[j] is None else len(resp[j]) / CHARS_PER_TOKEN for j in order])
            cont.append(prompt in flagged[kind])
    p_in, p_out = prices_for(models, PRICES_PER_MTOK if prices is None else prices, source=files[0],
                              table_source=None if prices is None else "prices")
    task = np.array(task, np.int64)
    cont = np.array(cont, bool)
    n_flagged = int(cont.sum())
    notes = {"files": [str(f) for f in files], "contaminated_flagged": n_flagged}
    if drop_contaminated:
        keep = np.flatnonzero(~cont)
        notes["dropped_contaminated"] = n_flagged
        task, cont = task[keep], cont[keep]
        prompts = [prompts[i] for i in keep]
        qids = [qids[i] for i in keep]
        outcome = [outcome[i] for i in keep]
        out_tok = [out_tok[i] for i in keep]
    outcome = np.array(outcome, np.float64).reshape(len(qids), len(models))
    out_tok = np.array(out_tok, np.float64).reshape(len(qids), len(models))
    notes["missing_outcomes"] = {m: int(np.isnan(outcome[:, k]).sum()) for k, m in enumerate(models)}
    # The cost is defined by the token rule: system prompt + own text at the input price,
    # the response at the output price. The same split is what assemble() recovers.
    system, question = split_prompts(prompts, task, len(task_names))
    shared = estimate_tokens(system)[task] + estimate_tokens(question)
    cost = (shared[:, None] * p_in[None, :] + out_tok * p_out[None, :]) / 1e6
    return assemble(model_names=models, task_names=task_names, task=task, prompts=prompts, query_id=qids,
                    outcome=outcome, cost_usd=cost, price_in=p_in, price_out=p_out, source="RouteLLM",
                    notes=notes, contaminated=cont)
