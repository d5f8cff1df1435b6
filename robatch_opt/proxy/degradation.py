"""Batch degradation ``r_k(b)``: the fraction of a model's single-prompt quality kept in a batch.

RoBatch recalibrates the unbatched utility by a model-specific degradation with batch size,
``u[i, k, b] = u0[i, k] * r_k(b)``. This module fits ``r_k`` from observations at several
batch sizes.

Model
-----
For model ``k`` on task ``t``::

    r_kt(b) = exp(-c_t * a_k * (b - 1) ** p_k),      a_k > 0, p_k > 0, c_t > 0

so ``r(1) = 1`` and ``r`` is non-increasing in ``b`` for every parameter value: both
properties hold by construction, not by luck of the fit. ``a_k`` is the model's rate,
``p_k`` its shape (``p < 1``: early drop that levels off; ``p > 1``: a knee), ``c_t`` a task
severity (some tasks suffer more from batching).

Sharing strength
    Task severities are shared by all models and shrunk towards 1 (prior
    ``log c_t ~ N(0, 0.5^2)``), so a task seen with one model informs the others, and
    :meth:`Degradation.retention` without ``task`` is the typical task (``c = 1``). Shapes are
    shrunk towards a common shape (``log p_k ~ N(mu, 0.5^2)``, ``mu`` fitted), so a model seen
    at only two batch sizes still gets a sensible shape.
Fit
    Weighted least squares on the retention ratios (weights: inverse binomial variance of
    each ratio from its sample size) plus the two priors, by Levenberg-Marquardt on the
    log-parameters (positivity for free).
Models without batch observations
    Predicted from the model's single-prompt capability ``c`` (by default its MMLU 5-shot
    accuracy, the scale on which :mod:`robatch_opt.workloads.retention` places gpt-4 and
    gpt-3.5 beside the Qwen3 and Gemma3 pools): the degradation at a reference batch size,
    ``D = -log r(b_ref)``, follows a power law in the error rate,
    ``log D = alpha + gamma * log(1 - c)``, fitted over the observed models (weaker models
    degrade faster when ``gamma > 0``, as the published gpt-3.5 vs gpt-4 data shows), with
    the common shape ``exp(mu)``. ``b_ref`` is the median observed batch size above 1.

Data
----
With no argument, :func:`fit_degradation` fits the published BatchPrompt observations
(Lin, Diesendruck, Du, Abraham, ICLR 2024, Tables 1-3 and Appendix A: gpt-4 and
gpt-3.5-turbo on BoolQ, RTE, QQP, GSM8K at b = 1, 16, 32, 64), bundled with the package in
``robatch_opt/data/llm_pools.json`` and read through
:func:`robatch_opt.workloads.retention.published_observations`. Sample sizes (for the
weights) are the paper's: 320 validation samples for BoolQ and QQP, 277 for RTE, 1280 for
GSM8K (source notes in ``/work/shared/data/llm_facts_sources.md`` section 3b).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..errors import RobatchError

__all__ = ["BatchObservations", "Degradation", "DegradationError", "fit_degradation",
           "published_batch_observations", "leave_one_batch_size_out", "PUBLISHED_SAMPLE_SIZES"]

#: Evaluation-set sizes behind the published accuracies (BatchPrompt, Sec. 4 and Appendix A).
PUBLISHED_SAMPLE_SIZES = {"BoolQ": 320, "QQP": 320, "RTE": 277, "GSM8K": 1280}
#: Prior standard deviations of log task severity and of log shape around the common shape.
TASK_PRIOR_SD = 0.5
SHAPE_PRIOR_SD = 0.5


class DegradationError(RobatchError, ValueError):
    """Bad degradation input (observations, model, batch size); names the field and index."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"`{field_name}`: {message}")


@dataclass(frozen=True, eq=False)
class BatchObservations:
    """Observed retention ratios ``acc(b) / acc(1)``, one entry per (model, task, b > 1).

    Attributes
    ----------
    model, task : tuple of str, length m
    batch_size : ndarray of int, shape (m,)
        Each > 1.
    retention : ndarray, shape (m,)
        Observed ``acc(b) / acc(1)`` (> 0; may exceed 1 by noise).
    accuracy, single_prompt_accuracy : ndarray, shape (m,)
        ``acc(b)`` and ``acc(1)`` in [0, 1].
    n_samples : ndarray, shape (m,)
        Number of answers behind ``acc(b)`` (sets the weight).
    capability : dict of str to float
        Single-prompt capability of models (for the capability law); may hold models
        without batch observations.
    """

    model: tuple
    task: tuple
    batch_size: np.ndarray
    accuracy: np.ndarray
    single_prompt_accuracy: np.ndarray
    n_samples: np.ndarray
    capability: dict = field(default_factory=dict)

    def __post_init__(self):
        m = len(self.model)
        if len(self.task) != m:
            raise DegradationError("task", f"must have {m} entries, got {len(self.task)}")
        b = np.asarray(self.batch_size, dtype=np.float64)
        acc = np.asarray(self.accuracy, dtype=np.float64)
        acc1 = np.asarray(self.single_prompt_accuracy, dtype=np.float64)
        n = np.asarray(self.n_samples, dtype=np.float64)
        for name, arr in (("batch_size", b), ("accuracy", acc), ("single_prompt_accuracy", acc1),
                          ("n_samples", n)):
            if arr.shape != (m,):
                raise DegradationError(name, f"must have shape ({m},), got {arr.shape}")
            bad = ~np.isfinite(arr)
            if bad.any():
                raise DegradationError(f"{name}[{int(np.argmax(bad))}]", "must be finite")
        checks = (("batch_size", (b < 2) | (b != np.round(b)), "must be an integer > 1"),
                  ("accuracy", (acc < 0) | (acc > 1), "must be in [0, 1]"),
                  ("single_prompt_accuracy", (acc1 <= 0) | (acc1 > 1), "must be in (0, 1]"),
                  ("n_samples", n <= 0, "must be > 0"))
        for name, bad, msg in checks:
            if bad.any():
                i = int(np.argmax(bad))
                raise DegradationError(f"{name}[{i}]", f"{msg}, got {float(np.asarray(getattr(self, name))[i])!r}")
        for k, c in self.capability.items():
            if not (np.isfinite(c) and 0.0 <= c < 1.0):
                raise DegradationError(f"capability[{k!r}]", f"must be in [0, 1), got {c!r}")
        object.__setattr__(self, "model", tuple(str(s) for s in self.model))
        object.__setattr__(self, "task", tuple(str(s) for s in self.task))
        object.__setattr__(self, "batch_size", b.astype(np.int64))
        object.__setattr__(self, "accuracy", acc)
        object.__setattr__(self, "single_prompt_accuracy", acc1)
        object.__setattr__(self, "n_samples", n)
        object.__setattr__(self, "capability", dict(self.capability))

    @property
    def retention(self) -> np.ndarray:
        """Observed ratios ``accuracy / single_prompt_accuracy``, shape (m,)."""
        return self.accuracy / self.single_prompt_accuracy

    @property
    def n_observations(self) -> int:
        return len(self.model)

    def select(self, mask) -> "BatchObservations":
        """The observations where ``mask`` is True."""
        idx = np.flatnonzero(np.asarray(mask))
        return BatchObservations(tuple(self.model[i] for i in idx), tuple(self.task[i] for i in idx),
                                 self.batch_size[idx], self.accuracy[idx], self.single_prompt_accuracy[idx],
                                 self.n_samples[idx], self.capability)

    @classmethod
    def from_log(cls, log, *, capabilities: Mapping[str, float] | None = None) -> "BatchObservations":
        """Aggregate an :class:`~robatch_opt.proxy.logs.ObservationLog` per (model, task, b).

        ``acc(b)`` is the mean outcome at ``b``; ``acc(1)`` is the mean unbatched outcome of
        the *same queries* when they were observed unbatched on that model (paired, which
        removes the difference in query difficulty between the two samples), else of all the
        unbatched rows of that (model, task). Capabilities default to the known MMLU value of
        a bundled model name, else the model's mean unbatched outcome in the log.
        """
        models, tasks, sizes, acc, acc1, nobs = [], [], [], [], [], []
        qids, _, _, _, row_q = log.queries()
        caps = {} if capabilities is None else dict(capabilities)
        for mname in log.model_names:
            on_m = log.model == mname
            single = on_m & (log.batch_size == 1)
            if single.any() and mname not in caps:
                caps[mname] = _default_capability(mname, float(log.outcome[single].mean()))
            for tname in log.task_names:
                on_mt = on_m & (log.task == tname)
                s_rows = on_mt & (log.batch_size == 1)
                if not s_rows.any():
                    continue
                # Mean unbatched outcome per query (over repeats), for pairing.
                q1 = row_q[s_rows]
                tot = np.bincount(q1, weights=log.outcome[s_rows], minlength=qids.shape[0])
                cnt = np.bincount(q1, minlength=qids.shape[0])
                for b in np.unique(log.batch_size[on_mt]):
                    if b == 1:
                        continue
                    rows = on_mt & (log.batch_size == b)
                    q = row_q[rows]
                    paired = cnt[q] > 0
                    if paired.all():
                        a1 = float((tot[q] / cnt[q]).mean())
                    else:
                        a1 = float(log.outcome[s_rows].mean())
                    if a1 <= 0.0:
                        continue               # no correct unbatched answer: no ratio to form
                    models.append(mname)
                    tasks.append(tname)
                    sizes.append(int(b))
                    acc.append(float(log.outcome[rows].mean()))
                    acc1.append(a1)
                    nobs.append(int(rows.sum()))
        return cls(tuple(models), tuple(tasks), np.array(sizes, np.int64), np.array(acc), np.array(acc1),
                   np.array(nobs, np.float64), caps)


def _default_capability(model_name: str, fallback: float) -> float:
    from ..workloads import retention as wr
    try:
        return float(wr.capability(model_name))
    except ValueError:
        return float(min(max(fallback, 1e-6), 1.0 - 1e-6))


@functools.lru_cache(maxsize=1)
def published_batch_observations() -> BatchObservations:
    """The bundled BatchPrompt observations (gpt-4, gpt-3.5-turbo) as :class:`BatchObservations`.

    Capabilities are the anchors' MMLU 5-shot accuracies (GPT-4 Technical Report, Table 2),
    as used by :mod:`robatch_opt.workloads.retention`.

    Examples
    --------
    >>> obs = published_batch_observations()
    >>> obs.n_observations, sorted(set(obs.model))
    (16, ['gpt-3.5-turbo', 'gpt-4'])
    """
    from ..workloads import retention as wr
    rows = wr.published_observations()
    caps = {wr.ANCHOR_GPT4: wr.GPT4_MMLU, wr.ANCHOR_GPT35: wr.GPT35_MMLU}
    return BatchObservations(
        model=tuple(o.model for o in rows), task=tuple(o.task for o in rows),
        batch_size=np.array([o.batch_size for o in rows], np.int64),
        accuracy=np.array([o.accuracy for o in rows]),
        single_prompt_accuracy=np.array([o.single_prompt_accuracy for o in rows]),
        n_samples=np.array([PUBLISHED_SAMPLE_SIZES[o.task] for o in rows], np.float64),
        capability=caps)


# ------------------------------------------------------------------------------ fitting
def _ratio_sd(obs: BatchObservations) -> np.ndarray:
    """Binomial standard error of each observed ratio (accuracy clipped off 0 and 1)."""
    n = obs.n_samples
    acc = np.clip(obs.accuracy, 0.5 / n, 1.0 - 0.5 / n)
    return np.sqrt(acc * (1.0 - acc) / n) / obs.single_prompt_accuracy


# Box on the log-parameters: keeps every curve finite (no 0 * inf at b = 1, no overflow)
# whatever the data; the bounds are far outside any plausible batch-prompting curve.
_LOG_RATE = (-25.0, 8.0)
_LOG_SHAPE = (np.log(0.1), np.log(4.0))
_LOG_SEVERITY = (-4.0, 4.0)
_LOG_DEGRADATION = (-40.0, 10.0)


def _bounds(K: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.r_[np.full(K, _LOG_RATE[0]), np.full(K, _LOG_SHAPE[0]), np.full(T, _LOG_SEVERITY[0]), _LOG_SHAPE[0]]
    hi = np.r_[np.full(K, _LOG_RATE[1]), np.full(K, _LOG_SHAPE[1]), np.full(T, _LOG_SEVERITY[1]), _LOG_SHAPE[1]]
    return lo, hi


def _predict(theta, mi, ti, b, K, T):
    log_a, log_p, log_c = theta[:K], theta[K:2 * K], theta[2 * K:2 * K + T]
    x = np.log(b - 1.0)
    return np.exp(-np.exp(log_c[ti] + log_a[mi] + np.exp(log_p[mi]) * x))


def _residuals(theta, mi, ti, b, y, w_sqrt, K, T):
    log_p, log_c, mu = theta[K:2 * K], theta[2 * K:2 * K + T], theta[-1]
    fit = w_sqrt * (_predict(theta, mi, ti, b, K, T) - y)
    return np.concatenate([fit, log_c / TASK_PRIOR_SD, (log_p - mu) / SHAPE_PRIOR_SD])


def _levenberg_marquardt(fun, theta0, lo, hi, *, max_iter=100, tol=1e-9):
    """Minimise ``||fun(theta)||^2`` over the box ``[lo, hi]`` (projected steps).

    Forward-difference Jacobian: the problems are tiny (tens of parameters).
    """
    theta = np.clip(np.asarray(theta0, np.float64), lo, hi)
    r = fun(theta)
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(max_iter):
        h = 1e-7 * np.maximum(1.0, np.abs(theta))
        jac = np.empty((r.shape[0], theta.shape[0]))
        for j in range(theta.shape[0]):
            e = np.zeros_like(theta)
            e[j] = h[j]
            jac[:, j] = (fun(theta + e) - r) / h[j]
        jtj, jtr = jac.T @ jac, jac.T @ r
        improved = False
        while lam < 1e12:
            step = np.linalg.solve(jtj + lam * (np.diag(np.diag(jtj)) + 1e-9 * np.eye(theta.shape[0])), -jtr)
            cand = np.clip(theta + step, lo, hi)
            r_c = fun(cand)
            c_c = float(r_c @ r_c)
            if np.isfinite(c_c) and c_c < cost:
                improved = cost - c_c > tol * max(cost, 1e-300)
                theta, r, cost = cand, r_c, c_c
                lam = max(lam / 3.0, 1e-12)
                break
            lam *= 4.0
        if not improved:
            break
    return theta, cost


@dataclass(frozen=True, eq=False)
class Degradation:
    """A fitted degradation model; :meth:`retention` gives ``r_k(b)``.

    Attributes
    ----------
    models : tuple of str
        Models with batch observations (own curve).
    rate, exponent : dict of str to float
        ``a_k`` and ``p_k`` of every observed model.
    task_severity : dict of str to float
        ``c_t`` of every observed task.
    common_exponent : float
        ``exp(mu)``, the shape of predicted (unobserved) models.
    reference_batch_size : int
        ``b_ref`` of the capability law.
    alpha, gamma : float
        Capability law ``log D = alpha + gamma * log(1 - c)``.
    capability : dict of str to float
        Capabilities the fit knew.
    rmse : dict of str to float
        Root-mean-square error of the fitted vs observed ratios, per observed model.
    rmse_accuracy : dict of str to float
        The same error in accuracy units (``ratio error * acc(1)``).
    n_observations : dict of str to int
    observations : BatchObservations
    """

    models: tuple
    rate: dict
    exponent: dict
    task_severity: dict
    common_exponent: float
    reference_batch_size: int
    alpha: float
    gamma: float
    capability: dict
    rmse: dict
    rmse_accuracy: dict
    n_observations: dict
    observations: BatchObservations

    def parameters(self, model_name: str, *, capability: float | None = None) -> tuple[float, float]:
        """``(a, p)`` of a model: fitted if observed, else predicted from its capability.

        Parameters
        ----------
        model_name : str
        capability : float, optional
            Single-prompt capability in [0, 1) (MMLU scale by default); needed for a model
            that is neither observed nor a bundled model.
        """
        if model_name in self.rate and capability is None:
            return self.rate[model_name], self.exponent[model_name]
        c = capability
        if c is None:
            c = self.capability.get(model_name)
        if c is None:
            try:
                from ..workloads import retention as wr
                c = wr.capability(model_name)
            except ValueError:
                raise DegradationError(
                    "model_name", f"model {model_name!r} has no batch observations and no known capability; "
                                  f"pass capability= (observed models: {list(self.models)})") from None
        c = float(c)
        if not (np.isfinite(c) and 0.0 <= c < 1.0):
            raise DegradationError("capability", f"must be in [0, 1), got {c!r}")
        if not np.isfinite(self.alpha):
            raise DegradationError("capability", "no observed model has a known capability, so models "
                                                 "without batch observations cannot be predicted; pass "
                                                 "capabilities= to fit_degradation")
        d_ref = np.exp(np.clip(self.alpha + self.gamma * np.log1p(-c), *_LOG_DEGRADATION))
        p = self.common_exponent
        return float(d_ref / (self.reference_batch_size - 1.0) ** p), float(p)

    def retention(self, model_name: str, batch_size, *, task: str | None = None,
                  capability: float | None = None):
        """``r_k(b)``: the fraction of single-prompt utility kept at batch size ``b``.

        Parameters
        ----------
        model_name : str
        batch_size : int, float or array_like
            Each finite and >= 1.
        task : str, optional
            A task of the observations (its severity applies); default the typical task.
        capability : float, optional
            Predict from this capability instead of the model's own curve.

        Returns
        -------
        float or ndarray
            ``r(1) = 1``; values in (0, 1], non-increasing in ``b``.

        Examples
        --------
        >>> deg = fit_degradation()
        >>> deg.retention("gpt-4", 1)
        1.0
        >>> bool(deg.retention("gpt-3.5-turbo", 16) < deg.retention("gpt-4", 16) < 1.0)
        True
        """
        a, p = self.parameters(model_name, capability=capability)
        c_t = 1.0
        if task is not None:
            if task not in self.task_severity:
                raise DegradationError("task", f"unknown task {task!r}; known: {sorted(self.task_severity)}")
            c_t = self.task_severity[task]
        try:
            b = np.asarray(batch_size, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DegradationError("batch_size", f"must be numeric, got {batch_size!r}") from exc
        bad = ~np.isfinite(b) | (b < 1.0)
        if bad.any():
            raise DegradationError("batch_size", f"must be finite and >= 1, got {b[bad].ravel()[0]!r}")
        with np.errstate(divide="ignore"):
            r = np.exp(-c_t * a * np.where(b > 1.0, (b - 1.0) ** p, 0.0))
        return float(r) if r.ndim == 0 else r

    def table(self, model_names: Sequence[str], batch_sizes: Sequence[int]) -> np.ndarray:
        """``r[k, s]`` for every model and batch size, shape (len(model_names), len(batch_sizes))."""
        return np.array([[self.retention(m, b) for b in batch_sizes] for m in model_names])


def _as_observations(observations, capabilities) -> BatchObservations:
    if observations is None:
        obs = published_batch_observations()
    elif isinstance(observations, BatchObservations):
        obs = observations
    else:
        from .logs import ObservationLog
        if isinstance(observations, ObservationLog):
            return BatchObservations.from_log(observations, capabilities=capabilities)
        raise DegradationError("observations", "must be None, a BatchObservations or an ObservationLog, "
                                               f"got {type(observations).__name__}")
    if capabilities:
        caps = dict(obs.capability)
        caps.update(capabilities)
        obs = BatchObservations(obs.model, obs.task, obs.batch_size, obs.accuracy, obs.single_prompt_accuracy,
                                obs.n_samples, caps)
    return obs


def _why_no_observation(observations) -> str:
    """Why a log yields no (model, task, b > 1) ratio: no batched row at all, or batched rows
    with nothing unbatched (or nothing answered correctly unbatched) to compare them with."""
    from .logs import ObservationLog
    if not isinstance(observations, ObservationLog) or not (observations.batch_size > 1).any():
        return "hold no observation at a batch size > 1"
    n_batched = int((observations.batch_size > 1).sum())
    return (f"hold {n_batched} rows at batch sizes > 1 but no (model, task) that also has unbatched rows "
            "(b = 1) with a correct answer: the retention acc(b) / acc(1) needs both on the same model "
            "and task (serve some of those queries alone too)")


def fit_degradation(observations=None, *, capabilities: Mapping[str, float] | None = None,
                    gamma_default: float | None = None) -> Degradation:
    """Fit per-model retention curves ``r_k(b)`` (see the module docstring for the model).

    Parameters
    ----------
    observations : None, BatchObservations or ObservationLog
        None (default): the bundled published BatchPrompt observations. A log is aggregated
        per (model, task, batch size) by :meth:`BatchObservations.from_log`.
    capabilities : mapping of model name to float, optional
        Single-prompt capabilities (override the defaults).
    gamma_default : float, optional
        Exponent of the capability law when fewer than two observed models have distinct
        capabilities; default the one fitted on the published observations.

    Returns
    -------
    Degradation

    Raises
    ------
    DegradationError
        No observation with ``b > 1``, or malformed observations.

    Notes
    -----
    Parameters: ``2 K + T + 1``; each Levenberg-Marquardt step costs
    O(m (2K + T)) for ``m`` observations. Well under a second for hundreds of observations.

    Examples
    --------
    >>> deg = fit_degradation()
    >>> sorted(deg.models)
    ['gpt-3.5-turbo', 'gpt-4']
    >>> deg.gamma > 0        # weaker models degrade faster
    True
    """
    obs = _as_observations(observations, capabilities)
    if obs.n_observations == 0:
        raise DegradationError("observations", _why_no_observation(observations))
    models = tuple(dict.fromkeys(obs.model))
    tasks = tuple(dict.fromkeys(obs.task))
    K, T = len(models), len(tasks)
    mi = np.array([models.index(m) for m in obs.model])
    ti = np.array([tasks.index(t) for t in obs.task])
    b = obs.batch_size.astype(np.float64)
    y = obs.retention
    w_sqrt = 1.0 / _ratio_sd(obs)

    # Start from a common shape p = 1 and each model's mean rate -log(r) / (b - 1).
    theta0 = np.zeros(2 * K + T + 1)
    for k in range(K):
        sel = mi == k
        rate = np.mean(-np.log(np.clip(y[sel], 1e-3, 1.0 - 1e-3)) / (b[sel] - 1.0))
        theta0[k] = np.clip(np.log(rate), *_LOG_RATE)
    fun = functools.partial(_residuals, mi=mi, ti=ti, b=b, y=y, w_sqrt=w_sqrt, K=K, T=T)
    theta, _ = _levenberg_marquardt(fun, theta0, *_bounds(K, T))

    pred = _predict(theta, mi, ti, b, K, T)
    err = pred - y
    rate = {m: float(np.exp(theta[k])) for k, m in enumerate(models)}
    expo = {m: float(np.exp(theta[K + k])) for k, m in enumerate(models)}
    sev = {t: float(np.exp(theta[2 * K + j])) for j, t in enumerate(tasks)}
    mu = float(theta[-1])
    b_ref = int(np.median(obs.batch_size))

    # Capability law through the observed models' degradation at b_ref.
    caps = dict(obs.capability)
    have = [m for m in models if m in caps]
    log_d = np.array([np.log(rate[m]) + expo[m] * np.log(b_ref - 1.0) for m in have])
    log_e = np.array([np.log1p(-caps[m]) for m in have])
    if len(have) >= 2 and np.ptp(log_e) > 1e-9:
        gamma, alpha = (float(v) for v in np.polyfit(log_e, log_d, 1))
    else:
        if gamma_default is None:
            gamma_default = fit_degradation().gamma if observations is not None else 1.0
        gamma = float(gamma_default)
        # No observed model with a capability: the law has no anchor (NaN; predicting an
        # unobserved model then raises DegradationError).
        alpha = float(np.mean(log_d - gamma * log_e)) if have else float("nan")

    rmse = {m: float(np.sqrt(np.mean(err[mi == k] ** 2))) for k, m in enumerate(models)}
    rmse_acc = {m: float(np.sqrt(np.mean((err * obs.single_prompt_accuracy)[mi == k] ** 2)))
                for k, m in enumerate(models)}
    counts = {m: int((mi == k).sum()) for k, m in enumerate(models)}
    return Degradation(models=models, rate=rate, exponent=expo, task_severity=sev,
                       common_exponent=float(np.exp(mu)), reference_batch_size=b_ref, alpha=alpha,
                       gamma=gamma, capability=caps, rmse=rmse, rmse_accuracy=rmse_acc,
                       n_observations=counts, observations=obs)


def leave_one_batch_size_out(observations=None, *, capabilities: Mapping[str, float] | None = None) -> dict:
    """Held-out error: for each model and each of its batch sizes, refit without them and predict.

    Parameters
    ----------
    observations, capabilities
        As :func:`fit_degradation`.

    Returns
    -------
    dict
        ``{"per_fold": [(model, batch_size, rmse, n), ...], "rmse": {model: rmse},
        "rmse_all": float}``: ratio-scale root-mean-square errors of the held-out
        observations (over the tasks of each fold; per model over all its folds).
        A fold leaving a model without observations predicts it from its capability.
    """
    obs = _as_observations(observations, capabilities)
    gamma_all = fit_degradation(obs).gamma
    per_fold, sq = [], {}
    for m in dict.fromkeys(obs.model):
        on_m = np.array([x == m for x in obs.model])
        for b in np.unique(obs.batch_size[on_m]):
            held = on_m & (obs.batch_size == b)
            deg = fit_degradation(obs.select(~held), gamma_default=gamma_all)
            idx = np.flatnonzero(held)
            pred = np.array([deg.retention(m, int(b), task=obs.task[i] if obs.task[i] in deg.task_severity else None,
                                           capability=None if m in deg.rate else obs.capability.get(m))
                             for i in idx])
            e2 = (pred - obs.retention[idx]) ** 2
            per_fold.append((m, int(b), float(np.sqrt(e2.mean())), int(idx.size)))
            sq.setdefault(m, []).extend(e2.tolist())
    all_sq = [v for vals in sq.values() for v in vals]
    return {"per_fold": per_fold, "rmse": {m: float(np.sqrt(np.mean(v))) for m, v in sq.items()},
            "rmse_all": float(np.sqrt(np.mean(all_sq)))}
