"""Small plans for the serving tests: two models, batch sizes 1 and 4, both used."""

from __future__ import annotations

import numpy as np

import robatch_opt as ro


def two_model_plan(n: int = 40, names=("model-a", "model-b"), *, n_solo: int | None = None,
                   system_tokens: float = 120.0):
    """An instance of two tasks and two models whose most useful plan serves task ``solo``
    (the first ``n_solo`` queries, default half) alone on the second model and task ``batch``
    (the rest) in batches of 4 on the first: both models and both batch sizes, decided by
    ``ro.solve``.
    """
    half = n // 2 if n_solo is None else n_solo
    models = [ro.Model(names[0], price_in=0.10, price_out=0.40, context_window=8192, batch_sizes=(1, 4)),
              ro.Model(names[1], price_in=0.30, price_out=1.20, context_window=8192, batch_sizes=(1, 4))]
    tasks = [ro.Task("solo", system_tokens=system_tokens), ro.Task("batch", system_tokens=system_tokens)]
    qt = np.r_[np.zeros(half, np.int64), np.ones(n - half, np.int64)]
    # options: (a,1) (a,4) (b,1) (b,4)
    u = np.where(qt[:, None] == 0, [0.5, 0.1, 0.9, 0.1], [0.7, 0.8, 0.7, 0.7])
    inst = ro.Instance(models=models, tasks=tasks, query_task=qt, input_tokens=np.full(n, 12.0),
                       output_tokens=np.full((n, 2), 4.0), utility=u)
    plan = ro.solve(inst, budget=ro.budget_from_fraction(inst, 1.0), method="milp")
    return inst, plan
