"""The LLM workload written chunk by chunk to a zarr store, never whole in memory.

Same model as :func:`robatch_opt.workloads.llm` (pools, prices, calibrated abilities, token
profiles, retention); the per-query draws are made per chunk from a generator seeded with
``(seed, chunk index)``, so a chunk can be generated anywhere (on a Dask worker) and the store
is the same for the same arguments and ``chunk_queries``. Tasks are split in proportion to
their weights within every chunk (largest remainder) and shuffled within it. The draws
differ from the in-memory :func:`~robatch_opt.workloads.llm` of the same seed (which draws
all queries at once); the distribution is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..instance import Instance, Model, Task
import importlib

# The module, not the function `llm` that the package re-exports under the same name.
_llm = importlib.import_module(".llm", __package__)

__all__ = ["write_llm"]


@dataclass(frozen=True, eq=False)
class _ChunkMaker:
    """Builds queries ``r0..r1-1`` of chunk ``c`` (picklable: shipped to Dask workers)."""

    models: tuple[Model, ...]
    tasks: tuple[Task, ...]
    weights: np.ndarray
    ability: np.ndarray          # (K, T)
    verbosity: np.ndarray        # (K, T)
    question: np.ndarray         # (T,)
    answer: np.ndarray           # (T,)
    retention: np.ndarray        # (J,)
    difficulty_sd: float
    seed: int

    def __call__(self, c: int, r0: int, r1: int) -> Instance:
        m = r1 - r0
        T = len(self.tasks)
        rng = np.random.default_rng([self.seed, c])
        query_task = rng.permutation(np.repeat(np.arange(T, dtype=np.int64), _llm._split_counts(m, self.weights)))
        difficulty = rng.normal(0.0, self.difficulty_sd, size=m)
        input_tokens = np.maximum(1.0, np.round(self.question[query_task]
                                                * np.exp(rng.normal(0.0, _llm.INPUT_LOG_SD, m))))
        query_len = rng.normal(0.0, _llm.OUTPUT_LOG_SD, m)
        output_tokens = np.maximum(1.0, np.round(
            self.answer[query_task][:, None] * np.exp(query_len[:, None] + self.verbosity[:, query_task].T)))
        base_utility = _llm._sigmoid(self.ability[:, query_task].T - difficulty[:, None])
        return Instance.from_decomposition(self.models, self.tasks, query_task, input_tokens, output_tokens,
                                           base_utility, self.retention)


def write_llm(out, pool: str, n: int, *, tasks=None, price: str = "compute", seed: int = 0,
              batch_sizes=(1, 2, 4, 8), difficulty_sd: float = 1.5, free_models: str = "drop",
              chunk_queries: int | None = None, client=None):
    """Generate the LLM workload into the store ``out`` chunk by chunk (see the module notes).

    Returns
    -------
    robatch_opt.distributed.ChunkedInstance
        The store, opened lazily.
    """
    from ..distributed.store import DEFAULT_CHUNK_QUERIES, write_chunked
    n = _llm._check_int(n, "n", 1)
    # The in-memory generator on one query validates every argument and calibrates the pool.
    w = _llm.llm_truth(pool, 1, tasks=tasks, price=price, seed=seed, batch_sizes=batch_sizes,
                       difficulty_sd=difficulty_sd, free_models=free_models)
    facts = _llm.load_facts()
    _, weights = _llm._task_weights(tasks, facts["tasks"])
    profiles = [facts["token_profiles"][t] for t in w.task_names]
    K, T = w.ability.shape
    maker = _ChunkMaker(
        models=w.instance.models, tasks=w.instance.tasks, weights=weights, ability=np.array(w.ability),
        verbosity=np.random.default_rng([seed, 1 << 40]).normal(0.0, _llm.MODEL_VERBOSITY_LOG_SD, (K, T)),
        question=np.array([p["question_tokens"] for p in profiles], dtype=np.float64),
        answer=np.array([p["answer_tokens"] for p in profiles], dtype=np.float64),
        retention=np.array(w.retention), difficulty_sd=float(difficulty_sd), seed=int(seed))
    return write_chunked(out, maker.models, maker.tasks, n, DEFAULT_CHUNK_QUERIES if chunk_queries is None else chunk_queries, maker,
                         client=client)
