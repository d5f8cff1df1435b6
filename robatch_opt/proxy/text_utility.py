"""Unbatched utility and output length predicted from a query's text, on scikit-learn.

:class:`TextUtility` is the proxy's predictor for real logs (a
:class:`~robatch_opt.datasets.RoutingData`): features from the question text (TF-IDF or
hashing of words, optionally reduced by truncated SVD), its task (one-hot), its length, and
user-supplied embeddings when given; per model a probabilistic classifier of the outcome
(RouteLLM, ECCOS and RouterBench's predictors are of this kind) and one pooled classifier of
each query's difficulty (its mean outcome over all models), which move the per-(task, model)
mean rate only where inner cross-validation on the training data shows they help; and, as
ECCOS's multi-objective predictor, a ridge regression of each model's output tokens on the
same features, so that plans for new queries use predicted costs.

:class:`TaskMeanUtility` is the per-(task, model) mean rate alone: the yardstick a text
predictor has to beat.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from .base_utility import PredictorError, _float_param, _int_param, prior_strength_eb, shrunk_task_means

__all__ = ["TextUtility", "TaskMeanUtility", "task_model_means", "shrunk_task_means", "prior_strength_eb",
           "BLEND_GRID"]

#: Candidate weights of the classifier against the per-(task, model) mean (``blend="cv"``).
BLEND_GRID = np.linspace(0.0, 1.0, 11)


def _logit(p, eps: float = 1e-3) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


class _OffsetLogistic:
    """``logit p = offset + b0 + z @ beta``: a logistic regression around a fixed offset.

    Fitted by Newton's method on the log loss of outcomes ``y`` in [0, 1] (soft outcomes as
    they are), with an L2 penalty ``l2`` on ``beta`` and a negligible one on ``b0`` (it only
    keeps ``b0`` finite when every outcome is the same): with no signal the fit stays at the
    offset (the task mean), and ``b0`` only corrects its overall level.
    """

    def __init__(self, l2: float = 1.0):
        self.l2 = float(l2)

    def fit(self, z, offset, y) -> "_OffsetLogistic":
        n, p = z.shape
        x = np.c_[np.ones(n), z]
        pen = np.r_[1e-3, np.full(p, self.l2)]
        theta = np.zeros(p + 1)
        for _ in range(100):
            q = 1.0 / (1.0 + np.exp(-np.clip(offset + x @ theta, -30.0, 30.0)))
            grad = x.T @ (q - y) + pen * theta
            hess = (x * (q * (1.0 - q))[:, None]).T @ x + np.diag(pen)
            step = np.linalg.solve(hess, grad)
            theta -= step
            if np.abs(step).max() < 1e-9:
                break
        self.theta_ = theta
        return self

    def predict(self, z, offset) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(offset + self.theta_[0] + z @ self.theta_[1:], -30.0, 30.0)))


def _task_centers(z, task, n_tasks: int) -> np.ndarray:
    """Mean of each column of ``z`` per task, shape (n_tasks, p); the overall mean for a task without rows."""
    cnt = np.bincount(task, minlength=n_tasks).astype(np.float64)
    sums = np.stack([np.bincount(task, weights=z[:, j], minlength=n_tasks) for j in range(z.shape[1])], axis=1)
    overall = z.mean(axis=0) if z.shape[0] else np.zeros(z.shape[1])
    return np.where(cnt[:, None] > 0, sums / np.maximum(cnt, 1.0)[:, None], overall[None, :])


def _labels(data) -> np.ndarray:
    return np.array(data.task_names, dtype=object)[data.task]


def _model_columns(fitted: tuple, data) -> np.ndarray:
    """Columns of a predictor fitted on models ``fitted`` for ``data``'s models, in ``data``'s
    order (a predictor's columns are its models, not positions): PredictorError when ``data``
    has a model the predictor was not fitted on."""
    names = tuple(data.model_names)
    index = {m: k for k, m in enumerate(fitted)}
    unknown = [m for m in names if m not in index]
    if unknown:
        raise PredictorError("data.model_names", f"models {unknown} were not in the data the predictor was fitted on "
                                                 f"({list(fitted)})")
    return np.array([index[m] for m in names], dtype=np.int64)


def _check_data(data, what: str = "data"):
    for attr in ("question", "task", "task_names", "model_names", "outcome"):
        if not hasattr(data, attr):
            raise PredictorError(what, f"must be a RoutingData (robatch_opt.datasets), got {type(data).__name__}")


def task_model_means(data, prior_strength="auto") -> tuple[dict, np.ndarray]:
    """Per-(task, model) mean outcome, each shrunk toward the model's overall mean.

    ``mean[t, k] = (sum_y + a_k * overall_k) / (n_tk + a_k)``: a Beta prior of ``a_k``
    pseudo-observations, by default fitted per model by empirical Bayes
    (:func:`prior_strength_eb`), so a task seen a few times is pulled toward the model's
    overall rate as much as the spread between tasks warrants.

    Returns
    -------
    means : dict of task name -> ndarray (K,)
        Tasks of ``data`` with at least one query.
    overall : ndarray (K,)
        Each model's mean over every observed query.
    """
    y = np.asarray(data.outcome, np.float64)
    T, K = len(data.task_names), y.shape[1]
    table = np.empty((T, K))
    overall = np.empty(K)
    for k in range(K):
        table[:, k], overall[k], _ = shrunk_task_means(y[:, k], np.asarray(data.task), T, prior_strength)
    present = np.bincount(np.asarray(data.task), minlength=T) > 0
    return {name: table[t] for t, name in enumerate(data.task_names) if present[t]}, overall


class TaskMeanUtility:
    """The per-(task, model) mean outcome (shrunk toward the model's mean; unknown task: the model's mean).

    Parameters
    ----------
    prior_strength : "auto" or float
        Pseudo-observations of the model's overall mean added to every task's rate;
        ``"auto"`` (default) fits them per model by empirical Bayes (:func:`prior_strength_eb`).
    """

    def __init__(self, prior_strength="auto"):
        if prior_strength != "auto" and not float(prior_strength) >= 0:
            raise PredictorError("prior_strength", f"must be 'auto' or >= 0, got {prior_strength!r}")
        self.prior_strength = prior_strength

    def fit(self, data) -> "TaskMeanUtility":
        """Count outcomes per (task, model) of ``data`` (a RoutingData)."""
        _check_data(data)
        self.means_, self.overall_ = task_model_means(data, self.prior_strength)
        self.model_names = tuple(data.model_names)
        return self

    def predict(self, data) -> np.ndarray:
        """``u0[i, k]``, shape (n, K)."""
        if not hasattr(self, "means_"):
            raise PredictorError("predictor", "TaskMeanUtility is not fitted; call fit first")
        _check_data(data)
        cols = _model_columns(self.model_names, data)
        out = np.empty((data.n_queries if hasattr(data, "n_queries") else len(data.task), len(self.model_names)))
        for i, name in enumerate(_labels(data).tolist()):
            out[i] = self.means_.get(name, self.overall_)
        return out[:, cols]


class TextUtility:
    """Predict each model's unbatched utility and output tokens from the query's text.

    Parameters
    ----------
    base : {"logistic", "knn"} or a scikit-learn classifier
        ``"logistic"`` (default): an L2 logistic regression per model (``LogisticRegression``,
        inverse penalty ``C``);
        ``"knn"``: the mean outcome of the ``n_neighbors`` nearest training queries (cosine
        distance, ``KNeighborsRegressor``); any estimator with ``fit`` and ``predict_proba``
        (cloned per model; soft outcomes become two weighted rows when its ``fit`` takes
        ``sample_weight``, else they are rounded).
    vectorizer : {"tfidf", "hashing"}
        ``TfidfVectorizer`` (word 1-2-grams, sublinear tf) or ``HashingVectorizer`` (no
        vocabulary to keep: for very large logs), on each query's own text.
    max_features : int
        Vocabulary size of the TF-IDF (or number of hash buckets).
    svd_components : int, optional
        Reduce the text features with ``TruncatedSVD`` to this many dimensions.
    task_weight : float
        Scale of the task one-hot columns: larger means less penalty on per-task intercepts.
    blend : {"stack", "cv"} or float
        How the text enters, per model, against the per-(task, model) mean:
        ``"stack"`` (default): the task mean is moved by a logistic regression around it
        (``logit u = logit mean_tk + b0 + z beta``) on signals centred within each task: the
        *pooled difficulty* ``d`` (one L2 logistic regression of each query's mean outcome over
        all models, whatever ``base`` is, so K models' answers inform it) and, with
        ``stack_own``, the model's own classifier.
        Each signal is kept only if its inner out-of-fold Brier score (the inner folds refit
        everything, the slopes included) beats what was kept before by ``stack_z`` standard
        errors; otherwise the prediction is exactly the task mean. Tasks with fewer than
        ``stack_min_rows`` answers keep their mean. ``blend_`` is then 0 (the mean), 0.5
        (difficulty) or 1 (difficulty and the model's own classifier).
        ``"cv"``: the weight ``lambda_k`` of the classifier is picked from :data:`BLEND_GRID`
        by the inner out-of-fold Brier score (0 when the text does not help that model); a
        number fixes it.
    blend_z : float
        ``blend="cv"``: standard errors by which the chosen blend must beat the task mean on
        the inner out-of-fold Brier score (else the weight is 0).
    stack_z : float
        ``blend="stack"``: standard errors by which each signal must lower the inner
        out-of-fold Brier score (default 1: the one-standard-error rule).
    stack_own : bool
        ``blend="stack"``: also try each model's own classifier (default False). A plan picks
        per query the model whose prediction is highest, so the independent noise of K
        per-model classifiers makes it prefer a model by chance; the pooled difficulty moves
        every model's prediction for a query together and cannot. On RouterBench and GSM8K the
        own classifiers made plans at a single model's budget realize less than that model
        (benchmarks/RESULTS.md, section g).
    stack_min_rows : int
        ``blend="stack"``: training answers a task needs to take part in the stack; within a
        smaller task the out-of-fold signals carry leave-one-out artefacts.
    shrinkage : float
        Pseudo-observations ``m`` of the shrinkage toward the per-(task, model) mean:
        ``u = w p + (1 - w) mean_tk`` with ``w = lambda_k n_tk / (n_tk + m)`` and ``n_tk`` the
        training queries of the task observed on the model (``lambda_k`` = 1 where the stack is
        used, ``blend="stack"``). On a task with few queries the prediction is close to the
        task's mean rate; on a large task it is the classifier's (or the stack's).
    n_neighbors : int
        Neighbours of ``base="knn"``.
    C : float
        Inverse L2 penalty of ``base="logistic"``.
    inner_folds : int
        Folds of the inner cross-validation of ``blend="stack"`` and ``"cv"``.
    output_alpha : float
        Ridge penalty of the output-token regression (on ``log1p`` tokens, with Duan's
        smearing factor so that the mean, not the median, is predicted).
    random_state : int

    Attributes
    ----------
    model_names : tuple of str
    means_ : dict of task -> (K,) per-(task, model) mean rates
    counts_ : dict of task -> (K,) training counts

    Notes
    -----
    Fit: O(K * fit of one classifier on n rows of sparse features). ``predict`` takes a
    :class:`~robatch_opt.datasets.RoutingData` (only its text, tasks and, for
    :meth:`predict_output_tokens`, nothing else), so it works on queries never answered.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> data = ro.datasets.load_routerbench("../shared/data/real/routerbench").dropna()  # doctest: +SKIP
    >>> u0 = ro.proxy.TextUtility().fit(data).predict(data)                           # doctest: +SKIP
    >>> u0.shape                                                                      # doctest: +SKIP
    (2205, 11)
    """

    def __init__(self, base="logistic", *, vectorizer: str = "tfidf", max_features: int = 20000,
                 svd_components: int | None = None, task_weight: float = 3.0, shrinkage: float = 10.0,
                 n_neighbors: int = 30, output_alpha: float = 1.0, C: float = 1.0, blend="stack",
                 inner_folds: int = 3, blend_z: float = 2.0, stack_z: float = 1.0, stack_min_rows: int = 30,
                 stack_own: bool = False, random_state: int = 0):
        if isinstance(base, str) and base not in ("logistic", "knn"):
            raise PredictorError("base", f"must be 'logistic', 'knn' or a scikit-learn classifier, got {base!r}")
        if not isinstance(base, str) and not (hasattr(base, "fit") and hasattr(base, "predict_proba")):
            raise PredictorError("base", f"a scikit-learn classifier needs fit and predict_proba; "
                                         f"{type(base).__name__} lacks one")
        if vectorizer not in ("tfidf", "hashing"):
            raise PredictorError("vectorizer", f"must be 'tfidf' or 'hashing', got {vectorizer!r}")
        self.base = base
        self.vectorizer = vectorizer
        # Checked here, by name, so that a bad value never reaches scikit-learn as a bare error.
        self.max_features = _int_param(max_features, "max_features", 1)
        self.svd_components = None if svd_components is None else _int_param(svd_components, "svd_components", 1)
        self.task_weight = _float_param(task_weight, "task_weight", positive=False)
        self.shrinkage = _float_param(shrinkage, "shrinkage", positive=False)
        self.n_neighbors = _int_param(n_neighbors, "n_neighbors", 1)
        self.output_alpha = _float_param(output_alpha, "output_alpha", positive=True)
        self.random_state = _int_param(random_state, "random_state", 0)
        self.C = _float_param(C, "C", positive=True)
        if blend not in ("stack", "cv") and not (isinstance(blend, Real) and not isinstance(blend, bool)
                                                 and 0.0 <= float(blend) <= 1.0):
            raise PredictorError("blend", f"must be 'stack', 'cv' or a weight in [0, 1], got {blend!r}")
        # Integers as everywhere in the package: an integral float (2.0) passes, 2.5 does not.
        inner_folds = _int_param(inner_folds, "inner_folds", 2)
        stack_min_rows = _int_param(stack_min_rows, "stack_min_rows", 1)
        for name, value in (("stack_z", stack_z), ("blend_z", blend_z)):
            if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(float(value)):
                raise PredictorError(name, f"must be a finite number, got {value!r}")
        if not float(stack_z) >= 0:
            raise PredictorError("stack_z", f"must be >= 0, got {stack_z!r}")
        if int(stack_min_rows) < 2 * int(inner_folds):
            raise PredictorError("stack_min_rows", f"must be >= 2 * inner_folds = {2 * int(inner_folds)}, "
                                                   f"got {stack_min_rows!r}")
        self.blend = blend
        self.inner_folds = int(inner_folds)
        self.blend_z = float(blend_z)
        self.stack_z = float(stack_z)
        self.stack_min_rows = int(stack_min_rows)
        self.stack_own = bool(stack_own)

    # ------------------------------------------------------------- features
    def _text_features(self, texts, fit: bool):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
        import scipy.sparse as sp
        if fit:
            if self.vectorizer == "tfidf":
                self.vec_ = None
                # A few queries share no word (min_df=2 keeps none), or hold no word at all:
                # then the text adds nothing and the task and length features remain.
                for min_df in (2, 1):
                    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df,
                                          max_features=self.max_features, dtype=np.float64)
                    try:
                        x = vec.fit_transform(texts)
                    except ValueError:           # "empty vocabulary", "no terms remain"
                        continue
                    self.vec_ = vec
                    break
            else:
                self.vec_ = HashingVectorizer(ngram_range=(1, 2), n_features=self.max_features,
                                              alternate_sign=False, norm="l2")
                x = self.vec_.transform(texts)
            self.svd_ = None
            if self.vec_ is None:
                return sp.csr_matrix((len(texts), 0))
            if self.svd_components is not None and min(x.shape) > 1:
                k = min(self.svd_components, min(x.shape) - 1)
                self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state)
                x = self.svd_.fit_transform(x)
            return x
        if self.vec_ is None:
            return sp.csr_matrix((len(texts), 0))
        x = self.vec_.transform(texts)
        if getattr(self, "svd_", None) is not None:
            x = self.svd_.transform(x)
        return x

    def _features(self, data, embeddings, fit: bool):
        import scipy.sparse as sp
        texts = [str(q) for q in data.question]
        x_text = self._text_features(texts, fit)
        labels = _labels(data)
        n = len(texts)
        if fit:
            self.tasks_ = tuple(dict.fromkeys(labels.tolist()))
        lookup = {t: j for j, t in enumerate(self.tasks_)}
        cols = np.array([lookup.get(t, -1) for t in labels.tolist()], dtype=np.int64)
        known = cols >= 0
        onehot = sp.csr_matrix((np.full(known.sum(), self.task_weight), (np.flatnonzero(known), cols[known])),
                               shape=(n, len(self.tasks_)))
        length = np.log1p(np.array([len(t) for t in texts], np.float64))[:, None]
        dense = [length]
        if embeddings is not None:
            try:
                e = np.asarray(embeddings, np.float64)
            except (TypeError, ValueError):
                raise PredictorError("embeddings", "must be an (n, d) array of numbers") from None
            if e.ndim != 2 or e.shape[0] != n:
                raise PredictorError("embeddings", f"must have shape ({n}, d), got {e.shape}")
            if not np.isfinite(e).all():
                raise PredictorError("embeddings", "must be finite")
            dense.append(e)
        dense = np.hstack(dense)
        if fit:
            self.has_embeddings_ = embeddings is not None
            self.dense_mean_ = dense.mean(axis=0)
            sd = dense.std(axis=0)
            self.dense_scale_ = np.where(sd > 0, sd, 1.0)
        elif self.has_embeddings_ != (embeddings is not None):
            raise PredictorError("embeddings", "give embeddings to predict exactly when fit had them")
        if dense.shape[1] != self.dense_mean_.shape[0]:
            raise PredictorError("embeddings", f"must have {self.dense_mean_.shape[0] - 1} columns as in fit")
        dense = (dense - self.dense_mean_) / self.dense_scale_
        return sp.hstack([sp.csr_matrix(x_text), onehot, sp.csr_matrix(dense)], format="csr")

    # ----------------------------------------------------------------- fit
    def _classifier(self):
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsRegressor
        if self.base == "logistic":
            # liblinear: fast and robust on sparse TF-IDF (lbfgs is 10-80x slower here).
            return LogisticRegression(C=self.C, solver="liblinear", max_iter=1000)
        if self.base == "knn":
            return KNeighborsRegressor(n_neighbors=self.n_neighbors, metric="cosine", weights="distance")
        return clone(self.base)

    def _fit_one(self, x, y):
        """A fitted estimator for one model, or a float (constant) when only one class is seen."""
        import inspect
        est = self._classifier()
        if self.base == "knn":
            return est.fit(x, y) if y.shape[0] >= 1 else float(np.mean(y))
        hard = np.isin(y, (0.0, 1.0)).all()
        if hard:
            xs, ys, w = x, y.astype(np.int64), None
        else:
            # A soft outcome y is two rows: label 1 with weight y and label 0 with weight 1 - y.
            import scipy.sparse as sp
            xs = sp.vstack([x, x], format="csr")
            ys = np.r_[np.ones(y.shape[0], np.int64), np.zeros(y.shape[0], np.int64)]
            w = np.r_[y, 1.0 - y]
            keep = w > 0
            xs, ys, w = xs[keep], ys[keep], w[keep]
        if np.unique(ys).shape[0] < 2:
            return float(np.mean(y))
        takes_weight = "sample_weight" in inspect.signature(est.fit).parameters
        if w is not None and not takes_weight:
            xs, ys, w = x, (y >= 0.5).astype(np.int64), None
            if np.unique(ys).shape[0] < 2:
                return float(np.mean(y))
        try:
            return est.fit(xs, ys) if w is None else est.fit(xs, ys, sample_weight=w)
        except TypeError as exc:
            if "sparse" not in str(exc).lower():
                raise
            # The features are sparse (TF-IDF or hashing): GaussianNB and the like refuse them.
            raise PredictorError("base", f"{type(est).__name__} needs dense input, and TextUtility's features "
                                         "are sparse (TF-IDF); use a classifier that takes scipy.sparse "
                                         "(LogisticRegression, SGDClassifier, MultinomialNB, ...)") from None

    def fit(self, data, *, embeddings=None) -> "TextUtility":
        """Fit on the observed outcomes and output tokens of ``data`` (a RoutingData).

        Parameters
        ----------
        data : RoutingData
        embeddings : array_like, shape (n, d), optional
            One vector per query of ``data`` (same order); then :meth:`predict` needs them too.

        Returns
        -------
        TextUtility
            ``self``.
        """
        from sklearn.linear_model import Ridge
        _check_data(data)
        if len(data.task) == 0:
            raise PredictorError("data", "has no queries to fit on")
        x = self._features(data, embeddings, fit=True)
        y = np.asarray(data.outcome, np.float64)
        self.model_names = tuple(data.model_names)
        self.means_, self.overall_ = task_model_means(data)
        obs = ~np.isnan(y)
        self.counts_ = {name: obs[data.task == t].sum(axis=0) for t, name in enumerate(data.task_names)}
        self.estimators_ = []
        self.blend_ = []
        self.stack_ = []
        self.output_models_ = []
        out = np.asarray(getattr(data, "output_tokens", np.full(y.shape, np.nan)), np.float64)
        task = np.asarray(data.task)
        if self.blend == "stack":
            fold = self._inner_fold_ids(y.shape[0])
            d_oof = self._fit_difficulty(x, y, fold)
        for k in range(y.shape[1]):
            seen = np.flatnonzero(obs[:, k])
            if seen.shape[0] == 0:
                raise PredictorError(f"outcome[:, {k}]", f"model {self.model_names[k]!r} has no observed outcome")
            self.estimators_.append(self._fit_one(x[seen], y[seen, k]))
            if self.blend == "stack":
                chosen = self._choose_stack(x[seen], y[seen, k], task[seen], fold[seen], d_oof[seen], data.task_names)
                self.stack_.append(chosen)
                self.blend_.append(0.0 if chosen is None else 1.0 if chosen[1] else 0.5)
            else:
                self.stack_.append(None)
                self.blend_.append(self._choose_blend(x[seen], y[seen, k], task[seen]))
            has = np.flatnonzero(np.isfinite(out[:, k]))
            if has.shape[0] >= 2:
                target = np.log1p(np.maximum(out[has, k], 0.0))
                reg = Ridge(alpha=self.output_alpha).fit(x[has], target)
                resid = target - reg.predict(x[has])
                self.output_models_.append((reg, float(np.mean(np.exp(resid)))))
            else:
                self.output_models_.append((None, float(np.nanmean(out[:, k])) if has.size else 0.0))
        return self

    def _predict_one(self, est, x) -> np.ndarray:
        if isinstance(est, float):
            return np.full(x.shape[0], est)
        if self.base == "knn":
            return np.clip(est.predict(x), 0.0, 1.0)
        proba = est.predict_proba(x)
        return proba[:, list(est.classes_).index(1)] if 1 in est.classes_ else np.zeros(x.shape[0])

    def _choose_blend(self, x, y, task) -> float:
        """Weight of the classifier against the task mean, chosen on inner out-of-fold predictions.

        Both the classifier and the per-(task, model) means are refitted on each inner
        training fold, and the weight in ``BLEND_GRID`` with the lowest out-of-fold Brier
        score wins if it beats the mean (weight 0) by more than ``blend_z`` standard errors
        of the paired loss differences; otherwise the weight is 0 and the predictor is the task
        mean (the ``shrinkage`` by counts still applies on top).
        """
        if self.blend != "cv":
            return float(self.blend)
        n = y.shape[0]
        if n < 3 * self.inner_folds:
            return 0.0
        from sklearn.model_selection import KFold
        raw = np.empty(n)
        mean = np.empty(n)
        n_tasks = int(task.max()) + 1
        for tr, te in KFold(self.inner_folds, shuffle=True, random_state=self.random_state).split(np.arange(n)):
            raw[te] = self._predict_one(self._fit_one(x[tr], y[tr]), x[te])
            means, _, _ = shrunk_task_means(y[tr], task[tr], n_tasks)
            mean[te] = means[task[te]]
        loss = np.array([(lam * raw + (1 - lam) * mean - y) ** 2 for lam in BLEND_GRID])    # (G, n)
        best = int(np.argmin(loss.mean(axis=1)))
        # Leave the task mean only for a clear gain (paired loss differences, blend_z standard
        # errors), so the noise of choosing among BLEND_GRID does not make the predictor worse
        # than the mean: with one SE it still was, on 2 of RouterBench's 11 models.
        diff = loss[best] - loss[0]
        sd = diff.std(ddof=1)
        if best == 0 or not sd > 0 or diff.mean() > -self.blend_z * sd / np.sqrt(n):
            return 0.0
        return float(BLEND_GRID[best])

    def _inner_fold_ids(self, n: int) -> np.ndarray:
        from sklearn.model_selection import KFold
        fold = np.zeros(n, np.int64)
        if n >= self.inner_folds:
            splits = KFold(self.inner_folds, shuffle=True, random_state=self.random_state).split(np.arange(n))
            for j, (_, te) in enumerate(splits):
                fold[te] = j
        return fold

    def _fit_difficulty(self, x, y, fold) -> np.ndarray:
        """Fit the pooled difficulty model; return its out-of-fold predictions on the training rows.

        The target of query ``i`` is its mean outcome over the models that answered it, so
        every model's answers inform one estimate of how hard the query is: with ``K`` models
        it rests on ``K`` times the labels of any one model's classifier. A soft-label L2
        logistic regression (inverse penalty ``C``) on the text features.
        """
        cnt = (~np.isnan(y)).sum(axis=1)
        has = np.flatnonzero(cnt > 0)
        ybar = np.nansum(np.nan_to_num(y, nan=0.0), axis=1)[has] / cnt[has]
        d_oof = np.full(y.shape[0], float(ybar.mean()) if has.size else 0.5)
        # The inner-fold models are kept: at prediction their mean is the feature, so the
        # stacker sees the same kind of input it was fitted on (a model refitted on all rows
        # gives more extreme probabilities than the out-of-fold ones its slopes were fitted to).
        self.difficulty_ = []
        for j in range(self.inner_folds):
            tr, te = has[fold[has] != j], np.flatnonzero(fold == j)
            if tr.shape[0] and te.shape[0]:
                est = self._fit_pooled(x[tr], ybar[fold[has] != j])
                d_oof[te] = self._predict_pooled(est, x[te])
                self.difficulty_.append(est)
        if not self.difficulty_:
            self.difficulty_.append(self._fit_pooled(x[has], ybar))
        return d_oof

    def _fit_pooled(self, x, ybar):
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression
        xs = sp.vstack([x, x], format="csr")
        ys = np.r_[np.ones(ybar.shape[0], np.int64), np.zeros(ybar.shape[0], np.int64)]
        w = np.r_[ybar, 1.0 - ybar]
        keep = w > 0
        if np.unique(ys[keep]).shape[0] < 2:
            return float(ybar.mean())
        return LogisticRegression(C=self.C, solver="liblinear", max_iter=1000).fit(xs[keep], ys[keep],
                                                                                    sample_weight=w[keep])

    @staticmethod
    def _predict_pooled(est, x) -> np.ndarray:
        if isinstance(est, float):
            return np.full(x.shape[0], est)
        return est.predict_proba(x)[:, list(est.classes_).index(1)]

    @staticmethod
    def _stack_z(d, raw, own: bool) -> np.ndarray:
        cols = [_logit(d)]
        if own:                                     # raw is not used (may be None) otherwise
            cols.append(_logit(np.clip(raw, 0.0, 1.0)))
        return np.column_stack(cols)

    def _choose_stack(self, x, y, task, fold, d_oof, task_names):
        """Move the task mean by the text signals, one step at a time, each kept only for a clear gain.

        On the inner folds (``fold``, shared with the difficulty model) the model's own
        classifier and the per-task means are refitted without the held-out fold, giving
        out-of-fold ``raw`` and ``mean`` for every training row. Two nested combinations are
        logistic regressions around the task mean (``logit u = logit mean_tk + b0 + z beta``,
        :class:`_OffsetLogistic`) on signals centred within each task, so that each task keeps
        its own level and the signals only move queries within it: ``z = (logit d)`` (``d`` the
        pooled difficulty) and ``z = (logit d, logit raw)``. Each is fitted on the other inner
        folds and scored on the held-out one, so its out-of-fold Brier score pays for its own
        fitted slopes. The difficulty step is kept if it beats the task mean, and the model's
        own classifier if it then beats what was kept so far (the difficulty step, or else the
        mean), each by more than ``stack_z`` standard errors of the paired per-query
        differences. Every choice uses the training data only.

        Why difficulty first: it is one signal shared by every model (fitted on all their
        answers), so it moves every model's prediction for a query together and cannot make a
        plan prefer one model over another by noise; a model's own classifier can, since the
        plan picks, per query, the model whose prediction is highest, noise included. So a
        model's own classifier has to earn its place over the shared signal.

        Returns
        -------
        (estimator, own, centers, inner) or None
            The :class:`_OffsetLogistic`, whether its signals include the model's own
            classifier, the per-task centres of the signals (task name -> (p,) array; tasks
            absent keep their mean) and, if ``own``, the inner-fold classifiers whose mean
            probability is the signal at prediction; None: the task mean.
        """
        n = y.shape[0]
        if n < self.stack_min_rows:
            return None
        n_tasks = len(task_names)
        raw, mean = np.empty(n), np.empty(n)
        inner = []
        for j in range(self.inner_folds):
            tr, te = fold != j, fold == j
            if not te.any():
                continue
            if tr.any():
                if self.stack_own:           # raw and inner feed only the own-classifier step
                    est = self._fit_one(x[tr], y[tr])
                    inner.append(est)
                    raw[te] = self._predict_one(est, x[te])
                means, _, _ = shrunk_task_means(y[tr], task[tr], n_tasks)
                mean[te] = means[task[te]]
            else:
                raw[te], mean[te] = 0.5, 0.5
        # Only tasks with stack_min_rows answers take part: within a smaller task the
        # out-of-fold signals are dominated by leave-one-out artefacts (a query's prediction
        # comes from its few task-mates, whose mean moves against its own outcome), and its
        # queries keep the task mean.
        big = np.bincount(task, minlength=n_tasks)[task] >= self.stack_min_rows
        if big.sum() < self.stack_min_rows:
            return None
        rows = np.flatnonzero(big)
        yb, tb, fb, mb = y[rows], task[rows], fold[rows], mean[rows]
        offset = _logit(mb)
        nb = rows.shape[0]

        def oof_loss(z):
            s_oof = np.array(mb, copy=True)
            for j in range(self.inner_folds):
                tr, te = fb != j, fb == j
                if te.any() and tr.any():
                    c = _task_centers(z[tr], tb[tr], n_tasks)
                    est = _OffsetLogistic().fit(z[tr] - c[tb[tr]], offset[tr], yb[tr])
                    s_oof[te] = est.predict(z[te] - c[tb[te]], offset[te])
            return (s_oof - yb) ** 2

        def clear_gain(new, old) -> bool:
            diff = new - old
            sd = diff.std(ddof=1)
            return bool(sd > 0 and diff.mean() < -self.stack_z * sd / np.sqrt(nb))

        loss = (mb - yb) ** 2
        chosen = None
        for own in (False, True):
            if own and not self.stack_own:
                break
            z = self._stack_z(d_oof[rows], raw[rows], own)
            new = oof_loss(z)
            if clear_gain(new, loss):
                c = _task_centers(z, tb, n_tasks)
                # Each row centred by its task's mean over the *other* rows, as a new query will
                # be (in-sample centring shrinks the deviations and so inflates the slopes).
                cnt = np.bincount(tb, minlength=n_tasks).astype(np.float64)[tb][:, None]
                est = _OffsetLogistic().fit(z - (c[tb] * cnt - z) / (cnt - 1), offset, yb)
                centers = {task_names[t]: c[t] for t in np.unique(tb)}
                chosen, loss = (est, own, centers, inner if own else None), new
        return chosen

    # -------------------------------------------------------------- predict
    def _check_fitted(self):
        if not hasattr(self, "estimators_"):
            raise PredictorError("predictor", "TextUtility is not fitted; call fit first")

    def predict_raw(self, data, *, embeddings=None) -> np.ndarray:
        """The classifiers' probabilities before shrinkage, shape (n, K): a column per model of
        ``data``, matched by name."""
        self._check_fitted()
        _check_data(data)
        return self._raw(data, embeddings)[:, _model_columns(self.model_names, data)]

    def _raw(self, data, embeddings) -> np.ndarray:
        """:meth:`predict_raw` in the fitted models' order."""
        x = self._features(data, embeddings, fit=False)
        out = np.empty((x.shape[0], len(self.model_names)))
        for k, est in enumerate(self.estimators_):
            out[:, k] = self._predict_one(est, x)
        return np.clip(out, 0.0, 1.0)

    def predict(self, data, *, embeddings=None) -> np.ndarray:
        """Unbatched utilities ``u0[i, k]`` in [0, 1], shrunk toward the per-(task, model) mean,
        shape (n, K): a column per model of ``data``, matched by name (PredictorError for a
        model the predictor was not fitted on)."""
        self._check_fitted()
        _check_data(data)
        cols = _model_columns(self.model_names, data)
        if len(data.task) == 0:                # no query: scikit-learn refuses 0 samples
            return np.zeros((0, len(cols)))
        return self._predict(data, embeddings)[:, cols]

    def _predict(self, data, embeddings) -> np.ndarray:
        """:meth:`predict` in the fitted models' order."""
        raw = self._raw(data, embeddings)
        labels = _labels(data).tolist()
        K = len(self.model_names)
        mean = np.array([self.means_.get(t, self.overall_) for t in labels]).reshape(len(labels), K)
        cnt = np.array([self.counts_.get(t, np.zeros(K)) for t in labels], np.float64).reshape(len(labels), K)
        w = cnt / (cnt + self.shrinkage) if self.shrinkage > 0 else np.ones_like(cnt)
        if self.blend != "stack":
            w = w * np.asarray(self.blend_)[None, :]
            return np.clip(w * raw + (1.0 - w) * mean, 0.0, 1.0)
        # Stacked: where a task's combination was kept, it replaces the classifier's raw
        # probability; elsewhere the weight is 0 and the prediction is the task mean.
        x = self._features(data, embeddings, fit=False)
        d = np.mean([self._predict_pooled(e, x) for e in self.difficulty_], axis=0)
        combined = np.array(mean, copy=True)
        used = np.zeros(mean.shape, dtype=bool)
        for k, chosen in enumerate(self.stack_):
            if chosen is not None:
                est, own, centers, inner = chosen
                own_p = np.mean([self._predict_one(e, x) for e in inner], axis=0) if own else None
                z = self._stack_z(d, own_p, own)
                on = np.array([t in centers for t in labels], dtype=bool)     # tasks the stack was fitted on
                if on.any():
                    c = np.array([centers[t] for t in np.asarray(labels, dtype=object)[on]]).reshape(-1, z.shape[1])
                    combined[on, k] = est.predict(z[on] - c, _logit(mean[on, k]))
                    used[on, k] = True
        w = np.where(used, w, 0.0)
        return np.clip(w * combined + (1.0 - w) * mean, 0.0, 1.0)

    def predict_output_tokens(self, data, *, embeddings=None) -> np.ndarray:
        """Expected output tokens of every query on every model, shape (n, K), >= 0.

        The regression's target is the data's ``output_tokens`` (for real logs, the
        cost-implied count: see :mod:`robatch_opt.datasets.tokens`), so ``input cost +
        predicted output tokens x output price`` predicts the real cost.
        """
        self._check_fitted()
        _check_data(data)
        cols = _model_columns(self.model_names, data)
        if len(data.task) == 0:
            return np.zeros((0, len(cols)))
        x = self._features(data, embeddings, fit=False)
        out = np.empty((x.shape[0], len(self.model_names)))
        for k, (reg, smear) in enumerate(self.output_models_):
            out[:, k] = smear if reg is None else np.expm1(reg.predict(x)) * smear
        return np.maximum(out, 0.0)[:, cols]

    def predict_cost_usd(self, data, *, embeddings=None) -> np.ndarray:
        """Predicted cost of each query alone on each model (system prompt included), USD, shape (n, K)."""
        o = self.predict_output_tokens(data, embeddings=embeddings)
        shared = np.asarray(data.system_tokens)[data.task] + np.asarray(data.input_tokens)
        return (shared[:, None] * np.asarray(data.price_in)[None, :] + o * np.asarray(data.price_out)[None, :]) / 1e6
