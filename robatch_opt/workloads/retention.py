"""Batch-prompting retention curves ``r(b)``: what fraction of single-prompt accuracy survives a batch.

RoBatch decomposes the utility of query ``i`` on model ``k`` in a batch of ``b`` as
``u[i, k, b] = u0[i, k] * r_k(b)``. This module supplies ``r_k(b)``.

What is measured
----------------
BatchPrompt (Lin, Diesendruck, Du, Abraham; ICLR 2024, Tables 1-3 and Appendix A) reports
accuracy against batch size for gpt-4 (BoolQ, RTE, QQP at b = 1, 16, 32, 64; GSM8K at b = 1,
32) and gpt-3.5-turbo (BoolQ, RTE, QQP at b = 1, 16, 32), one voting round, majority vote.
These rows are bundled in ``robatch_opt/data/llm_pools.json``
(``batch_prompting_observations``) and returned by :func:`published_observations`. The
anchors' MMLU 5-shot accuracies, gpt-4 0.864 and gpt-3.5 0.700, are from the GPT-4
Technical Report (OpenAI 2023, arXiv:2303.08774, Table 2).

What is assumed
---------------
1. **Curve shape.** ``r(b) = exp(-a * (b - 1) ** p)``: ``r(1) = 1``, non-increasing in ``b``
   for every rate ``a >= 0``. One exponent ``p`` is shared by both anchors and each anchor
   has its own rate ``a``, fitted jointly by least squares on ``log r`` where
   ``r = acc(b) / acc(1)`` (grid on ``p`` with step 0.001, closed-form ``a`` for each ``p``).
   The fit gives ``p ~ 1.05``, ``a(gpt-4) ~ 0.0014``, ``a(gpt-3.5) ~ 0.0050``
   (:func:`fitted_parameters`). A shared exponent keeps the ordering of curves the same at
   every ``b`` (a model with a larger rate is below at every batch size).
2. **Extrapolation to small b.** The observations start at ``b = 16``; the curve is used
   at ``b = 2..8`` by extrapolation. Cheng et al. (2023) report the same direction (accuracy
   typically falls as ``b`` grows) but their per-``b`` numbers are not in the bundled data.
3. **Mapping onto Qwen3 / Gemma3.** No measurement of batch degradation on these pools is
   public. A model's *capability* ``c`` is its MMLU 5-shot accuracy: the one benchmark with
   published accuracy for both the anchors and the pools (same shot count), so it puts them
   on one scale (the mean over the pools' six tasks has no gpt-4 / gpt-3.5 counterpart).
   The rate is a power law in the error rate ``1 - c`` through the two anchors::

       a(c) = a_gpt4 * ((1 - c) / (1 - 0.864)) ** gamma,
       gamma = log(a_gpt35 / a_gpt4) / log((1 - 0.700) / (1 - 0.864))   (~ 1.6)

   so ``a(0.864) = a_gpt4`` and ``a(0.700) = a_gpt35`` exactly, models between the anchors
   interpolate (log-linearly in the error rate), and weaker models (lower ``c``) degrade
   faster, polynomially rather than exponentially in their weakness. With this mapping
   Qwen3-32B keeps ~0.986 of its accuracy at ``b = 8`` and gemma-3-1b ~0.85.
4. Retention does not depend on the task, and no floor at chance level is applied.

Issue 6 (the degradation model) may refit these curves; :func:`published_observations`
and :class:`RetentionFit` are meant to be reused there.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from numbers import Real
from typing import Union

import numpy as np

from ..errors import InstanceError

__all__ = [
    "Observation", "RetentionFit", "load_facts", "published_observations", "fitted_parameters",
    "capability", "degradation_rate", "retention", "GPT4_MMLU", "GPT35_MMLU",
    "ANCHOR_GPT4", "ANCHOR_GPT35",
]

#: Model names of the two anchors in ``batch_prompting_observations``.
ANCHOR_GPT4 = "gpt-4"
ANCHOR_GPT35 = "gpt-3.5-turbo"
#: MMLU 5-shot accuracy of the anchors (GPT-4 Technical Report, arXiv:2303.08774, Table 2).
GPT4_MMLU = 0.864
GPT35_MMLU = 0.700

# Exponent grid of the joint fit: wide enough to hold concave (p < 1) and convex (p > 1) shapes.
_P_GRID = np.round(np.arange(0.05, 4.0 + 1e-9, 0.001), 3)


@functools.lru_cache(maxsize=1)
def load_facts() -> dict:
    """The bundled ``robatch_opt/data/llm_pools.json`` (pools, prices, accuracies, token profiles).

    Returns
    -------
    dict
        The parsed JSON; callers must not mutate it (it is cached).
    """
    text = resources.files("robatch_opt").joinpath("data", "llm_pools.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class Observation:
    """One published accuracy of a model at one batch size.

    Attributes
    ----------
    model, task : str
    batch_size : int
    accuracy : float
        Accuracy at ``batch_size``, as a fraction in [0, 1].
    single_prompt_accuracy : float
        Accuracy of the same model on the same task at ``b = 1``.
    """

    model: str
    task: str
    batch_size: int
    accuracy: float
    single_prompt_accuracy: float

    @property
    def relative(self) -> float:
        """``accuracy / single_prompt_accuracy``: the retention observed at this batch size."""
        return self.accuracy / self.single_prompt_accuracy


def published_observations() -> tuple[Observation, ...]:
    """Every batch-prompting observation with ``b > 1`` from the bundled data.

    Returns
    -------
    tuple of Observation
        In file order (model, task), batch sizes ascending. Source: BatchPrompt (Lin et al.,
        ICLR 2024) Tables 1-3 and Appendix A, one voting round, majority vote.

    Examples
    --------
    >>> obs = published_observations()
    >>> sorted({o.model for o in obs})
    ['gpt-3.5-turbo', 'gpt-4']
    >>> min(o.batch_size for o in obs)
    16
    """
    out = []
    for row in load_facts()["batch_prompting_observations"]["rows"]:
        acc = {int(b): float(a) / 100.0 for b, a in row["acc"].items()}
        for b in sorted(acc):
            if b > 1:
                out.append(Observation(row["model"], row["task"], b, acc[b], acc[1]))
    return tuple(out)


@dataclass(frozen=True)
class RetentionFit:
    """Parameters of ``r(b) = exp(-a * (b - 1) ** p)`` fitted to the published observations.

    Attributes
    ----------
    exponent : float
        ``p``, shared by both anchors.
    rate_gpt4, rate_gpt35 : float
        ``a`` of each anchor.
    gamma : float
        Exponent of the capability mapping ``a(c) = rate_gpt4 * ((1 - c) / (1 - GPT4_MMLU)) ** gamma``.
    rmse_log : float
        Root-mean-square residual of ``log r`` over all observations.
    n_observations : int
    """

    exponent: float
    rate_gpt4: float
    rate_gpt35: float
    gamma: float
    rmse_log: float
    n_observations: int

    def curve(self, rate: float, b) -> np.ndarray:
        """``exp(-rate * (b - 1) ** exponent)`` for an array of batch sizes."""
        return np.exp(-rate * (np.asarray(b, dtype=np.float64) - 1.0) ** self.exponent)


@functools.lru_cache(maxsize=1)
def fitted_parameters() -> RetentionFit:
    """Fit the shared exponent and the two anchor rates (cached; deterministic).

    Returns
    -------
    RetentionFit

    Notes
    -----
    For each ``p`` on a grid (0.05 to 4 by 0.001) the rate minimising
    ``sum (log r_obs + a x)^2`` with ``x = (b - 1)^p`` is ``a = -sum(x log r) / sum(x^2)``
    per anchor; the ``p`` of least total squared residual is kept.

    Examples
    --------
    >>> fit = fitted_parameters()
    >>> fit.rate_gpt35 > fit.rate_gpt4 > 0
    True
    """
    obs = published_observations()
    residual_sq = np.zeros(_P_GRID.shape[0])
    rates = {}
    for anchor in (ANCHOR_GPT4, ANCHOR_GPT35):
        sel = [o for o in obs if o.model == anchor]
        log_r = np.log([o.relative for o in sel])                               # (m,)
        x = (np.array([o.batch_size for o in sel], float)[None, :] - 1.0) ** _P_GRID[:, None]  # (P, m)
        a = -(x * log_r[None, :]).sum(axis=1) / (x * x).sum(axis=1)             # (P,)
        rates[anchor] = a
        residual_sq += ((log_r[None, :] + a[:, None] * x) ** 2).sum(axis=1)
    best = int(np.argmin(residual_sq))
    a4, a35 = float(rates[ANCHOR_GPT4][best]), float(rates[ANCHOR_GPT35][best])
    gamma = float(np.log(a35 / a4) / np.log((1.0 - GPT35_MMLU) / (1.0 - GPT4_MMLU)))
    return RetentionFit(exponent=float(_P_GRID[best]), rate_gpt4=a4, rate_gpt35=a35, gamma=gamma,
                        rmse_log=float(np.sqrt(residual_sq[best] / len(obs))), n_observations=len(obs))


def capability(model: str) -> float:
    """Capability of a named model: its MMLU 5-shot accuracy, the scale of the rate mapping.

    Parameters
    ----------
    model : str
        A model of ``llm_pools.json`` (e.g. ``"Qwen3-8B"``) or an anchor (``"gpt-4"``,
        ``"gpt-3.5-turbo"``).

    Returns
    -------
    float
        In [0, 1]. Raises :class:`~robatch_opt.errors.InstanceError` (field ``model``) for
        an unknown name.
    """
    if model == ANCHOR_GPT4:
        return GPT4_MMLU
    if model == ANCHOR_GPT35:
        return GPT35_MMLU
    values = load_facts()["accuracy_single_prompt"]["values"]
    if model not in values:
        known = sorted(values) + [ANCHOR_GPT35, ANCHOR_GPT4]
        raise InstanceError("model", f"unknown model {model!r}; known: {known}")
    return float(values[model]["MMLU"])


def _check_capability(c) -> float:
    if isinstance(c, bool) or not isinstance(c, Real):
        raise InstanceError("capability", f"must be a model name or a number in [0, 1], got {c!r}")
    c = float(c)
    if not np.isfinite(c) or c < 0.0 or c > 1.0:
        raise InstanceError("capability", f"must be in [0, 1], got {c!r}")
    return c


def degradation_rate(model_or_capability: Union[str, float]) -> float:
    """The rate ``a`` of ``r(b) = exp(-a (b - 1)^p)`` for a model name or a capability.

    Parameters
    ----------
    model_or_capability : str or float
        A model name (see :func:`capability`) or an MMLU-scale accuracy in [0, 1].

    Returns
    -------
    float
        ``rate_gpt4 * ((1 - c) / (1 - 0.864)) ** gamma``: exactly the fitted anchor rates at
        ``c = 0.864`` and ``c = 0.700``, non-increasing in ``c``, 0 at ``c = 1``.
    """
    c = (capability(model_or_capability) if isinstance(model_or_capability, str)
         else _check_capability(model_or_capability))
    fit = fitted_parameters()
    return float(fit.rate_gpt4 * ((1.0 - c) / (1.0 - GPT4_MMLU)) ** fit.gamma)


def retention(model_or_capability: Union[str, float], b):
    """Retention ``r(b)``: the fraction of single-prompt accuracy kept in a batch of ``b``.

    Parameters
    ----------
    model_or_capability : str or float
        A model name (pool model or anchor) or an MMLU-scale capability in [0, 1].
    b : int, float or array_like
        Batch size(s), each finite and >= 1.

    Returns
    -------
    float or ndarray
        A float for scalar ``b``, else an array of ``b``'s shape; ``r(1) = 1``, values in
        (0, 1], non-increasing in ``b`` and non-decreasing in capability.

    Examples
    --------
    >>> retention("Qwen3-32B", 1)
    1.0
    >>> bool(retention("Qwen3-0.6B", 8) < retention("Qwen3-32B", 8) < 1.0)
    True
    """
    rate = degradation_rate(model_or_capability)
    try:
        arr = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InstanceError("b", f"must be a number or an array of numbers, got {b!r}") from exc
    bad = ~np.isfinite(arr) | (arr < 1.0)
    if bad.any():
        where = "" if arr.ndim == 0 else "[" + ", ".join(
            str(int(v)) for v in np.unravel_index(int(np.argmax(bad)), arr.shape)) + "]"
        raise InstanceError(f"b{where}", f"batch size must be finite and >= 1, got {arr[bad].ravel()[0]!r}")
    r = fitted_parameters().curve(rate, arr)
    return float(r) if r.ndim == 0 else r
