"""Base (unbatched) utility predictors ``u0[i, k]``: retrieval-based and training-based.

Both follow the scikit-learn convention: ``fit(features, outcomes, task=...)`` returns the
predictor, ``predict(features, task=...)`` returns probabilities in [0, 1] of shape (n, K).
``outcomes`` is an (n, K) array of observed outcomes in [0, 1] (0/1 correctness or a
score), NaN where query ``i`` was not observed on model ``k``; :meth:`fit_log` takes an
:class:`~robatch_opt.proxy.logs.ObservationLog` and uses its unbatched rows.

- :class:`KNNUtility` (retrieval-based, as ECCOS's retrieval predictor): the ``k`` nearest
  training queries of the same task in standardised feature space, weighted by a Gaussian
  kernel whose width adapts to the ``k``-th neighbour's distance; per model, the weighted
  outcome rate shrunk towards the model's task-level rate (a Beta-style prior of
  ``prior_strength`` pseudo-observations), which keeps the estimates calibrated and away
  from 0 and 1 where neighbours are few.
- :class:`LogisticUtility` (training-based): per model, an L2-regularised logistic
  regression on the standardised features with one intercept per task, fitted by Newton's
  method (iteratively reweighted least squares). Soft outcomes in [0, 1] are fine (the
  cross-entropy is defined for them). (Kept in NumPy: scikit-learn's Newton-Cholesky on the
  same objective gave the same predictions to 8e-12 but fitted 1.5x slower, 0.67 s vs
  0.43 s on 20,000 queries x 6 models.)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validate import fmt_index, fmt_num, integer, number, numeric_array
from ..errors import RobatchError

__all__ = ["KNNUtility", "LogisticUtility", "PredictorError", "brier_score", "roc_auc",
           "expected_calibration_error"]


class PredictorError(RobatchError, ValueError):
    """Bad input to a predictor (shapes, NaN features, outcomes outside [0, 1], unfitted)."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"`{field_name}`: {message}")


def _predictor_error(field_name: str, idx: tuple, message: str) -> PredictorError:
    return PredictorError(field_name + fmt_index(idx), message)


def _int_param(value, name: str, least: int) -> int:
    v = integer(value, name, _predictor_error)          # an integral float passes, 2.5 does not
    if v < least:
        raise PredictorError(name, f"must be an integer >= {least}, got {v}")
    return v


def _float_param(value, name: str, *, positive: bool) -> float:
    v = number(value, name, _predictor_error)
    if not np.isfinite(v) or v < 0 or (positive and v == 0):
        raise PredictorError(name, f"must be a finite number {'>' if positive else '>='} 0, got {fmt_num(v)}")
    return v


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _bools_as_numbers(features):
    """``features`` with booleans (a bool array, a list of bools, a mixed DataFrame) as 0/1."""
    try:
        arr = features if isinstance(features, np.ndarray) else np.asarray(features)
    except (TypeError, ValueError):
        return features
    if arr.dtype.kind == "b":
        return arr.astype(np.float64)
    if arr.dtype.kind in "iuf":
        return arr                         # a list of numbers and bools: NumPy made the bools 0/1
    if arr.dtype.kind == "O":
        flat = [float(v) if isinstance(v, (bool, np.bool_)) else v for v in arr.ravel().tolist()]
        out = np.empty(arr.size, dtype=object)
        out[:] = flat
        return out.reshape(arr.shape)
    return features


def _check_features(features, n: int | None = None, d: int | None = None) -> np.ndarray:
    features = _bools_as_numbers(features)              # indicator features are 0/1
    # Numbers only: a string that looks like one ('0.5') is refused, as by every reader.
    x = np.array(numeric_array(features, "features", _predictor_error, ndim=(1, 2)), dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise PredictorError("features", f"must be 2-D (n, d), got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise PredictorError("features", f"must have {n} rows, got {x.shape[0]}")
    if d is not None and x.shape[1] != d:
        raise PredictorError("features", f"must have {d} columns (as in fit), got {x.shape[1]}")
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(bad)), bad.shape))
        raise PredictorError(f"features[{i}, {j}]", f"must be finite, got {fmt_num(x[i, j])}")
    return x


def _check_outcomes(outcomes, n: int) -> np.ndarray:
    try:
        y = np.array(outcomes, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictorError("outcomes", "must be an (n, K) array of numbers in [0, 1] or NaN") from None
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise PredictorError("outcomes", f"must have shape ({n}, K), got {y.shape}")
    bad = ~np.isnan(y) & ((y < 0) | (y > 1) | ~np.isfinite(y))
    if bad.any():
        i, k = (int(v) for v in np.unravel_index(int(np.argmax(bad)), bad.shape))
        raise PredictorError(f"outcomes[{i}, {k}]", f"must be in [0, 1] or NaN (unobserved), got {y[i, k]!r}")
    empty = np.isnan(y).all(axis=0)
    if empty.any():
        raise PredictorError(f"outcomes[:, {int(np.argmax(empty))}]", "model has no observed outcome")
    return y


def _task_codes(task, n: int, known: tuple | None):
    """Task labels -> integer codes; ``known`` fixes the code order (from fit)."""
    if task is None:
        labels = np.zeros(n, dtype=np.int64).astype(str)
    else:
        labels = np.asarray(task).astype(str)
        if labels.shape != (n,):
            raise PredictorError("task", f"must have shape ({n},), got {labels.shape}")
    if known is None:
        known = tuple(dict.fromkeys(labels.tolist()))
    lookup = {t: c for c, t in enumerate(known)}
    codes = np.array([lookup.get(t, -1) for t in labels.tolist()], dtype=np.int64)
    bad = codes < 0
    if bad.any():
        i = int(np.argmax(bad))
        if task is None:
            raise PredictorError("task", f"this predictor was fitted on tasks {list(known)}: pass task= "
                                         f"(one per query) to predict")
        raise PredictorError(f"task[{i}]", f"unknown task {str(labels[i])!r}; fitted tasks: {list(known)}")
    return codes, known


def prior_strength_eb(sums, counts) -> float:
    """Empirical-Bayes strength ``a`` of a Beta prior over task rates (method of moments).

    With task rates ``r_t = sums_t / counts_t`` around the overall rate ``p``, the spread
    between tasks beyond binomial noise is ``tau^2 = max(V - T p (1 - p) / N, 0)`` (``V`` the
    count-weighted variance of the rates, ``T`` tasks, ``N`` observations); a Beta prior of
    mean ``p`` and strength ``a`` has ``tau^2 = p (1 - p) / (a + 1)``. No spread beyond noise
    gives the cap (every task at the overall rate). Clipped to [1, 1e6].
    """
    s, n = np.asarray(sums, np.float64), np.asarray(counts, np.float64)
    keep = n > 0
    s, n = s[keep], n[keep]
    N = n.sum()
    if N == 0 or s.shape[0] < 2:
        return 1e6
    p = s.sum() / N
    noise = p * (1 - p)
    if noise <= 0:
        return 1e6
    v = float((n * (s / n - p) ** 2).sum() / N)
    tau2 = v - s.shape[0] * noise / N
    if tau2 <= 0:
        return 1e6
    return float(np.clip(noise / tau2 - 1.0, 1.0, 1e6))


def shrunk_task_means(y, task, n_tasks: int, prior_strength="auto", *, toward: float | None = None):
    """Per-task mean of one model's outcomes ``y`` (NaN = unobserved), shrunk toward its overall
    mean (or toward ``toward``).

    Returns
    -------
    means : ndarray (n_tasks,)
        ``(sum_t + a * center) / (n_t + a)`` with ``center`` the overall mean or ``toward``;
        ``center`` where the task has no observation (also with ``a = 0``).
    overall : float
        The model's own mean over every observation (0.5 without any).
    a : float
        The prior strength used (``"auto"``: :func:`prior_strength_eb`).
    """
    y = np.asarray(y, np.float64)
    obs = ~np.isnan(y)
    sums = np.bincount(task[obs], weights=y[obs], minlength=n_tasks)
    cnt = np.bincount(task[obs], minlength=n_tasks).astype(np.float64)
    overall = float(sums.sum() / cnt.sum()) if cnt.sum() else 0.5
    center = overall if toward is None else float(toward)
    a = prior_strength_eb(sums, cnt) if prior_strength == "auto" else float(prior_strength)
    den = cnt + a
    means = np.where(den > 0, (sums + a * center) / np.where(den > 0, den, 1.0), center)
    return means, overall, a


class _BasePredictor:
    model_names: tuple
    tasks_: tuple

    def _check_fitted(self):
        if not hasattr(self, "tasks_"):
            raise PredictorError("predictor", f"{type(self).__name__} is not fitted; call fit first")

    def fit_log(self, log, model_names: Sequence[str] | None = None):
        """Fit on the unbatched rows (``batch_size == 1``) of an observation log.

        Parameters
        ----------
        log : ObservationLog
        model_names : sequence of str, optional
            Column order of :meth:`predict`; default the log's models in order of appearance.
        """
        names = log.model_names if model_names is None else tuple(model_names)
        unknown = [m for m in names if m not in log.model_names]
        if unknown:
            raise PredictorError("model_names", f"{unknown} are not models of the log; its models: "
                                                f"{list(log.model_names)}")
        _, task, feats, y = log.outcome_matrix(names, batch_size=1)
        seen = ~np.isnan(y).all(axis=1)
        if not seen.any():
            # An empty log "fitted" a predictor of no model (with NumPy's empty-mean warnings).
            raise PredictorError("log", "has no unbatched (batch_size == 1) outcome to fit on")
        return self.fit(feats[seen], y[seen], task=task[seen], model_names=names)


class LogisticUtility(_BasePredictor):
    """Training-based base utility: an L2-regularised logistic regression per model.

    Parameters
    ----------
    l2 : float
        Ridge penalty on the feature weights (standardised features), > 0 (without it a
        constant or duplicated feature makes the Newton system singular).
    max_iter : int
        Newton iterations per model.
    tol : float
        Stop when the largest Newton step is below ``tol``.
    prior_strength : float
        Pseudo-observations of the model's overall outcome rate added to each task (at the
        mean features): a task the model never answered gets the model's overall rate rather
        than 0.5, and a task it answered once is not certain of that one answer (as
        :class:`KNNUtility`'s prior). The overall rate is itself shrunk toward the rate pooled
        over all models by as many pseudo-observations. ``0`` leaves both unshrunk.

    Attributes
    ----------
    coef_ : ndarray, shape (K, d)
        Weights of the standardised features per model.
    intercept_ : ndarray, shape (K, T)
        One intercept per (model, task).

    Notes
    -----
    ``logit u0[i, k] = b[k, t(i)] + w_k . z_i`` with ``z`` the standardised features. Each
    Newton step solves a ``(T + d)``-square system: O(n (T + d)^2) per step and model.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1))
    >>> y = (rng.random((2000, 1)) < 1 / (1 + np.exp(-2 * x))).astype(float)
    >>> p = LogisticUtility().fit(x, y).predict([[0.0], [3.0]])
    >>> bool(abs(p[0, 0] - 0.5) < 0.05 and p[1, 0] > 0.95)
    True
    """

    def __init__(self, l2: float = 1.0, max_iter: int = 50, tol: float = 1e-8, prior_strength: float = 2.0):
        self.l2 = _float_param(l2, "l2", positive=True)
        self.max_iter = _int_param(max_iter, "max_iter", 1)
        self.tol = _float_param(tol, "tol", positive=True)
        self.prior_strength = _float_param(prior_strength, "prior_strength", positive=False)

    def fit(self, features, outcomes, *, task=None, model_names: Sequence[str] | None = None):
        """Fit one regularised logistic model per column of ``outcomes`` (NaN = unobserved).

        Returns
        -------
        LogisticUtility
            ``self``.
        """
        x = _check_features(features)
        n, d = x.shape
        y = _check_outcomes(outcomes, n)
        codes, tasks = _task_codes(task, n, None)
        K, T = y.shape[1], len(tasks)
        self.mean_ = x.mean(axis=0)
        self.scale_ = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        z = (x - self.mean_) / self.scale_
        onehot = np.zeros((n, T))
        onehot[np.arange(n), codes] = 1.0
        design = np.hstack([onehot, z])                                   # (n, T + d)
        # Intercepts get a tiny penalty only, so an all-0 or all-1 task stays finite.
        penalty = np.r_[np.full(T, 1e-6), np.full(d, self.l2)]
        coef = np.zeros((K, T + d))
        m = self.prior_strength
        pooled = float(np.nanmean(y))
        for k in range(K):
            seen = ~np.isnan(y[:, k])
            # The model's overall rate, itself shrunk toward the rate pooled over all models
            # (a model answered once is not certain everywhere either).
            overall = float((y[seen, k].sum() + m * pooled) / (seen.sum() + m))
            # The prior: per task, m pseudo-rows at the mean features (z = 0) with the model's
            # overall rate as their (soft) outcome.
            a = np.vstack([design[seen], np.hstack([np.eye(T), np.zeros((T, d))])])
            t = np.r_[y[seen, k], np.full(T, overall)]
            wt = np.r_[np.ones(int(seen.sum())), np.full(T, m)]
            rate = np.clip(shrunk_task_means(y[:, k], codes, T, m, toward=overall)[0], 0.01, 0.99)
            beta = np.r_[np.log(rate / (1 - rate)), np.zeros(d)]
            # The intercepts' tiny penalty pulls toward the (smoothed) task rate, not toward
            # 0.5: a task with no answer and no prior weight keeps the model's overall rate.
            center = beta.copy()
            for _ in range(self.max_iter):
                p = _sigmoid(a @ beta)
                grad = a.T @ (wt * (p - t)) + penalty * (beta - center)
                hess = (a * (wt * p * (1 - p))[:, None]).T @ a + np.diag(penalty)
                step = np.linalg.solve(hess, grad)
                beta = beta - step
                if np.max(np.abs(step)) < self.tol:
                    break
            coef[k] = beta
        self.intercept_ = coef[:, :T]
        self.coef_ = coef[:, T:]
        self.tasks_ = tasks
        self.model_names = tuple(model_names) if model_names is not None else tuple(f"model{k}" for k in range(K))
        if len(self.model_names) != K:
            raise PredictorError("model_names", f"must have {K} names, got {len(self.model_names)}")
        return self

    def predict(self, features, *, task=None) -> np.ndarray:
        """Probabilities ``u0[i, k]`` in [0, 1], shape (n, K)."""
        self._check_fitted()
        x = _check_features(features, d=self.coef_.shape[1])
        codes, _ = _task_codes(task, x.shape[0], self.tasks_)
        z = (x - self.mean_) / self.scale_
        return _sigmoid(self.intercept_[:, codes].T + z @ self.coef_.T)


class KNNUtility(_BasePredictor):
    """Retrieval-based base utility: similarity-weighted outcome rates of the nearest queries.

    Parameters
    ----------
    k : int
        Neighbours per query (searched among training queries of the same task).
    prior_strength : float
        Pseudo-observations of the (model, task) mean outcome added to every estimate; that
        mean is itself shrunk toward the model's overall rate by as many pseudo-observations
        (a task the model never answered gets its overall rate), and that toward the rate
        pooled over all models.
    metric : {"euclidean", "cosine"}
        Distance on standardised features; ``"cosine"`` suits embeddings.
    chunk_size : int
        Test queries per block of the distance computation (bounds memory at
        ``chunk_size * n_train_task`` floats).

    Notes
    -----
    Neighbours per task by scikit-learn's ``NearestNeighbors`` (KD-tree, ball tree or brute
    force, chosen by size and dimension; Euclidean on the standardised, and for ``"cosine"``
    unit-normalised, features), queried in chunks of ``chunk_size``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(3000, 1))
    >>> y = (rng.random((3000, 1)) < 1 / (1 + np.exp(-2 * x))).astype(float)
    >>> p = KNNUtility(k=100).fit(x, y).predict([[0.0], [3.0]])
    >>> bool(abs(p[0, 0] - 0.5) < 0.1 and p[1, 0] > 0.9)
    True
    """

    def __init__(self, k: int = 50, prior_strength: float = 2.0, metric: str = "euclidean",
                 chunk_size: int = 1024):
        if metric not in ("euclidean", "cosine"):
            raise PredictorError("metric", f"must be 'euclidean' or 'cosine', got {metric!r}")
        self.k = _int_param(k, "k", 1)
        self.prior_strength = _float_param(prior_strength, "prior_strength", positive=False)
        self.metric = metric
        self.chunk_size = _int_param(chunk_size, "chunk_size", 1)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean_) / self.scale_
        if self.metric == "cosine":
            norm = np.linalg.norm(z, axis=1, keepdims=True)
            z = z / np.where(norm > 0, norm, 1.0)
        return z

    def fit(self, features, outcomes, *, task=None, model_names: Sequence[str] | None = None):
        """Store the standardised training queries and outcomes (NaN = unobserved).

        Returns
        -------
        KNNUtility
            ``self``.
        """
        x = _check_features(features)
        n = x.shape[0]
        if x.shape[1] == 0:
            # Without a feature every query is every other's neighbour: say so rather than
            # return the task means under another name.
            raise PredictorError("features", "KNNUtility needs at least one feature column, got none "
                                             "(a log without feature columns: use LogisticUtility or "
                                             "TextUtility on the question text)")
        y = _check_outcomes(outcomes, n)
        codes, tasks = _task_codes(task, n, None)
        self.mean_ = x.mean(axis=0)
        self.scale_ = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        z = self._transform(x)
        K = y.shape[1]
        observed = ~np.isnan(y)
        y0 = np.where(observed, y, 0.0)
        self.train_ = []
        self.prior_ = np.empty((len(tasks), K))
        m = self.prior_strength
        # Each model's overall rate, shrunk toward the rate pooled over all models by the same
        # pseudo-observations (a model answered once is not certain everywhere either).
        pooled = y0.sum() / observed.sum()
        overall = (y0.sum(axis=0) + m * pooled) / (observed.sum(axis=0) + m)
        for k in range(K):
            # The (model, task) rate, itself shrunk toward the model's overall rate by the same
            # pseudo-observations: one answer on a task is not certainty (it predicted 1.0).
            self.prior_[:, k] = shrunk_task_means(y[:, k], codes, len(tasks), m, toward=overall[k])[0]
        for c in range(len(tasks)):
            sel = codes == c
            from sklearn.neighbors import NearestNeighbors     # lazy: `import robatch_opt` stays fast
            ztr = np.ascontiguousarray(z[sel])
            # scikit-learn picks a KD-tree, ball tree or brute force by the data's size and dimension.
            index = NearestNeighbors(metric="euclidean").fit(ztr) if ztr.shape[0] else None
            self.train_.append((ztr, y0[sel], observed[sel].astype(np.float64), index))
        self.tasks_ = tasks
        self.n_features_ = x.shape[1]
        self.model_names = tuple(model_names) if model_names is not None else tuple(f"model{k}" for k in range(K))
        if len(self.model_names) != K:
            raise PredictorError("model_names", f"must have {K} names, got {len(self.model_names)}")
        return self

    def predict(self, features, *, task=None) -> np.ndarray:
        """Probabilities ``u0[i, k]`` in [0, 1], shape (n, K)."""
        self._check_fitted()
        x = _check_features(features, d=self.n_features_)
        codes, _ = _task_codes(task, x.shape[0], self.tasks_)
        z = self._transform(x)
        K = self.prior_.shape[1]
        out = np.empty((x.shape[0], K))
        for c in range(len(self.tasks_)):
            rows = np.flatnonzero(codes == c)
            ztr, ytr, otr, index = self.train_[c]
            kk = min(self.k, ztr.shape[0])
            for s in range(0, rows.shape[0], self.chunk_size):
                blk = rows[s:s + self.chunk_size]
                dist, nn = index.kneighbors(z[blk], n_neighbors=kk)                 # (b, kk)
                dn = dist * dist
                # Gaussian kernel, width = distance of the k-th neighbour (adaptive bandwidth).
                h2 = np.maximum(dn.max(axis=1, keepdims=True), 1e-12)
                w = np.exp(-0.5 * dn / h2)                                  # (b, kk), in (e^-0.5, 1]
                wy = np.einsum("bn,bnk->bk", w, ytr[nn])
                wo = np.einsum("bn,bnk->bk", w, otr[nn])
                m = self.prior_strength
                # No observed neighbour and no prior weight (prior_strength = 0): the prior
                # alone, not 0 / 0 (it returned NaN).
                den = wo + m
                out[blk] = np.where(den > 0, (wy + m * self.prior_[c]) / np.where(den > 0, den, 1.0),
                                    self.prior_[c])
        return np.clip(out, 0.0, 1.0)


# ------------------------------------------------------------------------------ metrics
def _metric_inputs(prob, outcome) -> tuple[np.ndarray, np.ndarray]:
    """``prob`` and ``outcome`` as flat float arrays of one shape, every value in [0, 1]
    (PredictorError naming the argument otherwise: a NaN outcome was counted as a negative,
    a probability of 1.5 crashed the binning)."""
    out = []
    for name, v in (("prob", prob), ("outcome", outcome)):
        try:
            a = np.asarray(v, np.float64)
        except (TypeError, ValueError):
            raise PredictorError(name, "must be an array of numbers in [0, 1]") from None
        out.append(a)
    p, y = out
    if p.shape != y.shape:
        raise PredictorError("outcome", f"must have the shape of `prob` {p.shape}, got {y.shape}")
    for name, a in (("prob", p), ("outcome", y)):
        bad = ~((a >= 0.0) & (a <= 1.0))
        if bad.any():
            i = np.unravel_index(int(np.argmax(bad)), a.shape)
            where = f"{name}[{', '.join(map(str, i))}]" if a.ndim else name
            raise PredictorError(where, f"must be a number in [0, 1] (drop unobserved entries first), "
                                        f"got {fmt_num(float(a[i]))}")
    return p.ravel(), y.ravel()


def brier_score(prob, outcome) -> float:
    """Mean squared difference between predicted probabilities and outcomes (lower is better)."""
    p, y = _metric_inputs(prob, outcome)
    return float(np.mean((p - y) ** 2))


def roc_auc(prob, outcome) -> float:
    """Area under the ROC curve of binary outcomes (Mann-Whitney U, ties averaged).

    Returns NaN when only one class is present.
    """
    p, y = _metric_inputs(prob, outcome)
    y = y > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ps = p[order]
    ranks = np.empty(p.shape[0])
    # Average rank within runs of equal scores.
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    ends = np.r_[starts[1:], ps.shape[0]]
    avg = (starts + ends - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(prob, outcome, n_bins: int = 10) -> float:
    """Expected calibration error: bin-size-weighted ``|mean outcome - mean prob|`` over equal-width bins."""
    p, y = _metric_inputs(prob, outcome)
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    sp = np.bincount(idx, weights=p, minlength=n_bins)
    sy = np.bincount(idx, weights=y, minlength=n_bins)
    return float(np.abs(sy - sp).sum() / max(p.shape[0], 1))
