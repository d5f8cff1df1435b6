"""Workload generators: seeded synthetic families and calibrated LLM pools.

- :func:`synthetic`: Pisinger-style families (``uncorrelated``, ``correlated``,
  ``strongly_correlated``) and an ``llm_like`` family with many tasks, vectorised to
  n = 10^6 queries.
- :func:`llm` / :func:`llm_truth`: the Qwen3 and Gemma3 pools with published accuracies,
  prices, context windows and token profiles (bundled ``data/llm_pools.json``), utilities
  from a calibrated item-response model and batch retention from :mod:`.retention`.

Each module's docstring says what is measured and what is assumed.
"""

from __future__ import annotations

from . import retention
from .llm import LLMWorkload, calibrate_ability, expected_accuracy, llm, llm_truth, pool_names, task_names
from .synthetic import FAMILIES, model_ladder, synthetic

__all__ = ["synthetic", "FAMILIES", "model_ladder", "llm", "llm_truth", "LLMWorkload", "pool_names",
           "task_names", "expected_accuracy", "calibrate_ability", "retention"]
