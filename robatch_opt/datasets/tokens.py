"""Token counts without a tokenizer, and the split of a real cost into fixed and variable parts.

No tokenizer can be downloaded where this package runs, so token counts that a source does
not hold are estimated by one stated rule: **tokens = characters / 4** (:data:`CHARS_PER_TOKEN`,
OpenAI's rule of thumb for English text). Measured against real counts
(``benchmarks/bench_real.py``, RESULTS.md "Real data"): RouterBench's costs imply exact
integer token counts (prices in :mod:`.prices`), and RouterArena stores each model's real
input and output counts.

The cost identity
-----------------
An :class:`~robatch_opt.Instance` prices one call of task ``t`` on model ``k`` as
``f[t, k] = s[t] * p_in[k] / 1e6`` plus, per query, ``v[i, k] = (l[i] * p_in[k] + o[i, k] * p_out[k]) / 1e6``.
:func:`split_costs` chooses ``s``, ``l`` and ``o`` so that ``f + v`` reproduces a real cost
``c[i, k]`` exactly (to rounding):

1. ``s[t]`` and ``l[i]`` start from estimates (the rule above, or real shared counts);
2. they are capped so that no model's real cost is below its input part:
   ``s[t] + l[i] <= min_k c[i, k] * 1e6 / p_in[k]`` (``s[t]`` by the smallest cap of its
   task, ``l[i]`` by its own);
3. ``o[i, k] = (c[i, k] * 1e6 - (s[t] + l[i]) * p_in[k]) / p_out[k]``, the cost-implied
   remainder, which is then >= 0.

``o`` is thus "output tokens plus whatever the shared input estimate missed, priced at the
output rate": exact in dollars by construction, approximate in tokens.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import CostValueError

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens", "common_prefix", "split_costs"]

#: Characters per token of the estimate (OpenAI's rule of thumb for English).
CHARS_PER_TOKEN = 4.0


def estimate_tokens(texts) -> np.ndarray:
    """Estimated token counts of texts: ``len(text) / CHARS_PER_TOKEN`` (float, not rounded).

    Examples
    --------
    >>> estimate_tokens(["abcd", "", "abcdefgh"]).tolist()
    [1.0, 0.0, 2.0]
    """
    return np.array([len(t) / CHARS_PER_TOKEN for t in texts], dtype=np.float64)


def common_prefix(prompts) -> str:
    """The shared system prompt of a task: the longest common prefix, cut at a paragraph break.

    The prefix ends right after the last ``"\\n\\n"`` inside the longest common prefix (so a
    question that happens to start like another one keeps its first words). A task with
    fewer than two distinct prompts has no detectable prefix (``""``).

    Examples
    --------
    >>> common_prefix(["Solve.\\n\\nQ: 1+1", "Solve.\\n\\nQ: 2+2"])
    'Solve.\\n\\n'
    >>> common_prefix(["only one"])
    ''
    """
    prompts = list(prompts)
    if len(set(prompts)) < 2:
        return ""
    pre = os.path.commonprefix(prompts)
    cut = pre.rfind("\n\n")
    return pre[:cut + 2] if cut >= 0 else ""


def split_costs(cost_usd, task, price_in, price_out, system_tokens, input_tokens, *, model_names=None):
    """Split real per-query costs into a per-(task, model) call cost and per-query variable costs.

    Parameters
    ----------
    cost_usd : ndarray, shape (n, K)
        Real costs; NaN where a query was not run on a model (its ``o`` is NaN too).
    task : ndarray of int, shape (n,)
    price_in, price_out : ndarray, shape (K,)
        USD per million tokens; ``price_out`` must be > 0.
    system_tokens : ndarray, shape (T,)
        Estimated system-prompt tokens per task.
    input_tokens : ndarray, shape (n,)
        Estimated input tokens of each query's own text.
    model_names : sequence of str, optional
        Names the models in errors (else their index).

    Returns
    -------
    system_tokens : ndarray, shape (T,)
    input_tokens : ndarray, shape (n,)
        The estimates after capping (see the module docstring).
    output_tokens : ndarray, shape (n, K)
        Cost-implied output tokens, >= 0; NaN where ``cost_usd`` is NaN.
    n_capped : int
        Number of queries whose input estimate was lowered (system prompt or own text).

    Raises
    ------
    CostValueError
        A non-positive output price.
    """
    c = np.asarray(cost_usd, np.float64)
    p_in = np.asarray(price_in, np.float64)
    p_out = np.asarray(price_out, np.float64)
    if (p_out <= 0).any():
        k = int(np.argmax(p_out <= 0))
        name = repr(model_names[k]) if model_names is not None else k
        raise CostValueError(f"output price of model {name} must be > 0 to split costs, got {float(p_out[k])!r}",
                             column="price_out")
    s = np.array(system_tokens, np.float64)
    l = np.array(input_tokens, np.float64)
    task = np.asarray(task, np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap_ik = np.where(p_in[None, :] > 0, c * 1e6 / p_in[None, :], np.inf)
    cap_ik = np.where(np.isnan(cap_ik), np.inf, cap_ik)
    cap = cap_ik.min(axis=1) if c.shape[1] else np.full(c.shape[0], np.inf)      # (n,)
    task_cap = np.full(s.shape[0], np.inf)
    np.minimum.at(task_cap, task, cap)
    s_new = np.minimum(s, task_cap)
    l_new = np.clip(np.minimum(l, cap - s_new[task]), 0.0, None)
    n_capped = int(((s_new[task] < s[task]) | (l_new < l)).sum())
    shared = (s_new[task] + l_new)[:, None] * p_in[None, :]
    o = (c * 1e6 - shared) / p_out[None, :]
    # Rounding can leave -1e-13 where the cap binds; the identity still holds to ~1e-16 relative.
    o = np.where(np.isnan(o), np.nan, np.maximum(o, 0.0))
    return s_new, l_new, o, n_capped
