"""Ready-made online experiments: held-out streams with an offline-fitted predictor, and plots.

Used by ``robatch-opt online`` and ``benchmarks/bench_online.py`` so both report the same
thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InstanceError
from .hindsight import cheapest_single_model, hindsight, model_means, offline_plan
from .learner import OnlineLogistic
from .replay import replay
from .errors import OnlineError, StreamError
from .router import BatchingRouter, MessPlusRouter, calibrated_random_router, check_seed, equilibrium_queue
from .stream import RequestStream, stream_from_llm

__all__ = ["Split", "routerbench_split", "MIN_SPLIT_ROWS", "llm_split", "compare", "plot_time_series"]


@dataclass(frozen=True, eq=False)
class Split:
    """A stream to replay, the data the predictor was fitted on, and that predictor."""

    stream: RequestStream
    train: RequestStream
    predictor: OnlineLogistic
    description: str


def _fit(train: RequestStream, seed: int) -> OnlineLogistic:
    return OnlineLogistic(train.features.shape[1], train.instance.n_models, seed=seed).fit(train.features,
                                                                                          train.outcome)


#: Fewest complete rows :func:`routerbench_split` takes: each half must hold some queries of
#: each kind for the predictor to fit and the stream to say anything.
MIN_SPLIT_ROWS = 20

#: :func:`llm_split`'s training workload of stream seed ``s`` has seed ``TRAIN_SEED_OFFSET + s``
#: (stream seeds are below it, so one split never streams another's training workload).
TRAIN_SEED_OFFSET = 2**31


def routerbench_split(paths, *, fold: int = 0, seed: int = 0, batch_sizes=(1, 2, 4, 8),
                      prices: dict | None = None) -> Split:
    """RouterBench (every complete row), shuffled by ``seed`` and halved: stream one half (``fold``),
    fit the predictor and the output-token prior on the other.

    Parameters
    ----------
    paths : path or sequence of paths
        RouterBench CSV files or a folder (:func:`robatch_opt.datasets.load_routerbench`).
    fold : {0, 1}
        The half streamed.
    seed : int
        Shuffles the rows before halving; also seeds the predictor's fit.
    batch_sizes : sequence of int
        Batch sizes of every model in the stream's pool.
    prices : mapping of model to (input, output) USD per million tokens, optional
        For a log in RouterBench's format with models RouterBench does not price; merged over
        RouterBench's own prices (:data:`robatch_opt.datasets.PRICES_PER_MTOK`), so a log
        mixing both needs only the new ones.

    Raises
    ------
    OnlineError
        ``fold`` is not 0 or 1, or ``seed`` not an integer >= 0.
    StreamError
        Fewer than :data:`MIN_SPLIT_ROWS` rows have an outcome on every model.
    DatasetError
        The files do not load (see :func:`robatch_opt.datasets.load_routerbench`).
    """
    from ..datasets import PRICES_PER_MTOK, load_routerbench
    from ..datasets._common import check_price_keys
    from .realdata import stream_from_routing_data
    if isinstance(fold, bool) or fold not in (0, 1):
        raise OnlineError("fold", f"must be 0 or 1 (the half streamed), got {fold!r}")
    seed = check_seed(seed)
    if prices is not None and not isinstance(prices, Mapping):
        raise OnlineError("prices", f"must be a mapping of model to (input, output) USD per million tokens, "
                                    f"got {type(prices).__name__}")
    loaded = load_routerbench(paths, prices=None if prices is None else {**PRICES_PER_MTOK, **prices})
    if prices is not None:
        # The merged table prices every RouterBench model: a typo of one in the user's own
        # keys would fall back to RouterBench's price silently.
        check_price_keys(prices, loaded.model_names, source="prices")
    data = loaded.dropna()
    if data.n_queries < MIN_SPLIT_ROWS:
        raise StreamError("data", f"{data.n_queries} of {loaded.n_queries} rows have an outcome on every model; "
                                  f"the split needs at least {MIN_SPLIT_ROWS} (half streamed, half to fit the "
                                  "predictor on)")
    perm = np.random.default_rng(seed).permutation(data.n_queries)
    half = data.n_queries // 2
    parts = (data.select(perm[:half]), data.select(perm[half:]))
    test, train = parts[fold], parts[1 - fold]
    s = stream_from_routing_data(test, batch_sizes=batch_sizes, prior=train)
    tr = stream_from_routing_data(train, batch_sizes=batch_sizes, prior=train)
    return Split(s, tr, _fit(tr, seed),
                 f"{'RouterBench' if prices is None else 'Log in RouterBench format,'} {len(data.task_names)} tasks "
                 f"x {data.n_models} models: {s.n_requests} requests "
                 f"streamed (fold {fold} of 2, seed {seed}), predictor fitted on the other {tr.n_requests}")


def llm_split(pool: str = "qwen3", n: int = 2000, *, tasks=None, seed: int = 0) -> Split:
    """A simulated ``ro.workloads.llm`` stream; the predictor is fitted on an independent workload
    (seed ``TRAIN_SEED_OFFSET + seed``) of the same kind.

    Parameters
    ----------
    pool : {"qwen3", "gemma3"}
    n : int
        Requests streamed; the training workload has ``max(n, 1000)``.
    tasks : None, sequence of str, or mapping of str to float, optional
        As :func:`robatch_opt.workloads.llm_truth`.
    seed : int in [0, 2**31)
        Seed of the streamed workload (its queries, outcome draws and features;
        ``TRAIN_SEED_OFFSET + seed`` for the training workload) and of the predictor's fit.
        Training seeds lie above every stream seed, so no split streams another's
        training workload.

    Returns
    -------
    Split
        ``stream`` and ``train`` with simulated outcomes (:func:`stream_from_llm`);
        ``predictor`` an :class:`OnlineLogistic` fitted on ``train``.

    Raises
    ------
    InstanceError
        Bad ``pool``, ``n``, ``tasks`` or ``seed`` (see :func:`robatch_opt.workloads.llm_truth`).
    """
    from ..workloads import llm_truth
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and not seed < TRAIN_SEED_OFFSET:
        raise InstanceError("seed", f"must be below 2**31 (training workloads use the seeds above), got {seed}")
    w = llm_truth(pool, n=n, tasks=tasks, seed=seed)      # checks seed's type and sign
    ts = TRAIN_SEED_OFFSET + int(seed)
    wt = llm_truth(pool, n=max(n, 1000), tasks=tasks, seed=ts)
    s, tr = stream_from_llm(w, seed=seed), stream_from_llm(wt, seed=ts)
    return Split(s, tr, _fit(tr, seed), f"ro.workloads.llm({pool!r}, n={n}, seed={seed}): simulated outcomes")


def compare(split: Split, alpha: float, *, V=None, c: float = 0.1, max_wait_s: float | None = 2.0,
            rate_per_s: float = 20.0, arrival="poisson", seed: int = 0, baselines: bool = True,
            progress=None, warm_start: bool = False, window_solver: str = "heuristic") -> dict:
    """MESS+, the batching router (if ``max_wait_s`` is set), the calibrated random router, the
    cheapest single model and both hindsight bounds on one stream.

    With ``warm_start`` each router's queue starts at :func:`equilibrium_queue` on
    ``split.train`` (0 where no queue meets ``alpha`` in prediction); ``window_solver`` is
    the batching router's.

    Parameters
    ----------
    split : Split
        ``split.stream`` is replayed; ``split.predictor`` starts every router (copied, so
        each starts from the same fit); ``split.train`` calibrates the random router and,
        with ``warm_start``, the initial queues.
    alpha : float in [0, 1]
        The service level.
    V : float > 0, optional
        As :class:`MessPlusRouter` (default per router: ``DEFAULT_V_SCALE / c_ref``).
    c : float >= 0
        Exploration constant of both routers.
    max_wait_s : float >= 0, optional
        The batching router's longest wait in seconds; None skips that router.
    rate_per_s : float > 0
        Mean arrival rate, requests per second.
    arrival : {"poisson", "bursty"} or array_like of timestamps
        As :func:`replay`.
    seed : int
        Seed of the routers' exploration draws, of the random router and of the arrivals and
        feedback draws of every replay.
    baselines : bool
        False replays only MESS+ and the batching router.
    progress : bool, optional
        Progress bars of the MESS+ and batching replays (as :func:`replay`).
    warm_start : bool
    window_solver : {"heuristic", "exact", "auto"}

    Returns
    -------
    dict
        ``mess``, ``batching``, ``random`` (:class:`OnlineResult` or None), ``single``
        (:class:`SingleModelBaseline`), ``hindsight_b1``, ``hindsight_batch``
        (:class:`HindsightBound` or None when ``alpha`` is out of reach even in hindsight),
        ``offline_b1``, ``offline_batch`` (:class:`OfflinePlan` with the offline-fitted
        predictor, or None when it predicts no plan reaching ``alpha``). Also ``alpha``.
        Without ``baselines`` only ``alpha``, ``mess`` and ``batching``.

    Raises
    ------
    OnlineError
        A bad ``alpha``, ``V``, ``c``, ``max_wait_s``, ``seed``, ``window_solver``,
        ``rate_per_s`` or ``arrival`` (from the routers and :func:`replay`).
    """
    s = split.stream

    def q0(router) -> float:
        if not warm_start:
            return 0.0
        q = equilibrium_queue(router, split.train)
        return q if math.isfinite(q) else 0.0

    out: dict = {"alpha": alpha}
    mess = MessPlusRouter(s.model_names, alpha=alpha, V=V, c=c, predictor=split.predictor, seed=seed)
    mess.initial_queue = q0(mess)
    out["mess"] = replay(s, mess, arrival=arrival, rate_per_s=rate_per_s, seed=seed, progress=progress)
    if max_wait_s is None:
        out["batching"] = None
    else:
        batch = BatchingRouter(s.model_names, alpha=alpha, V=V, c=c, max_wait_s=max_wait_s, window_solver=window_solver,
                               predictor=split.predictor, seed=seed)
        batch.initial_queue = q0(batch)
        out["batching"] = replay(s, batch, arrival=arrival, rate_per_s=rate_per_s, seed=seed, progress=progress)
    if baselines:
        acc, cost = model_means(split.train)            # estimated offline, as the router would
        out["random"] = replay(s, calibrated_random_router(s.model_names, acc, cost, alpha=alpha, seed=seed),
                               arrival=arrival, rate_per_s=rate_per_s, seed=seed, progress=False)
        out["single"] = cheapest_single_model(s, alpha)
        from ..errors import InfeasibleBudgetError
        for key, batching in (("hindsight_b1", False), ("hindsight_batch", True)):
            try:
                out[key] = hindsight(s, alpha, batching=batching)
            except InfeasibleBudgetError:
                out[key] = None
        for key, batching in (("offline_b1", False), ("offline_batch", True)):
            try:
                out[key] = offline_plan(s, alpha, split.predictor, batching=batching)
            except InfeasibleBudgetError:
                out[key] = None
    return out


def plot_time_series(results: dict, path: str, *, title: str = "") -> None:
    """Running satisfaction and cumulative cost over time, one line per labelled result.

    Parameters
    ----------
    results : mapping of label to OnlineResult
    path : str
        PNG file to write (needs matplotlib).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    alphas = set()
    for label, r in results.items():
        ts = r.time_series()
        a1.plot(ts["time_s"], ts["running_satisfaction"], label=label, lw=1.2)
        a2.plot(ts["time_s"], ts["cumulative_cost_usd"], label=label, lw=1.2)
        alphas.add(r.alpha)
    for a in alphas:
        a1.axhline(a, color="k", ls="--", lw=0.8)
    a1.set_xlabel("time (s)")
    a1.set_ylabel("running satisfaction")
    a1.set_ylim(max(0.0, min(alphas) - 0.15), 1.0)
    a2.set_xlabel("time (s)")
    a2.set_ylabel("cumulative cost (USD)")
    a1.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from .._files import write_figure
    write_figure(fig, path, dpi=110)         # format by suffix, one atomic write to exactly `path`
