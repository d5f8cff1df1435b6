"""Real routing data in, one result type out: public per-query logs to plan on and grade by.

In the style of ``sklearn.datasets``: one ``load_*`` per source, the caller passes the path
(nothing is fetched behind their back), every loader returns a :class:`RoutingData`.

- :func:`load_routerbench`: RouterBench rows (11 models, real correctness and real cost);
- :func:`load_routellm`: RouteLLM's MMLU and GSM8K correctness (GPT-4-1106 vs Mixtral);
- :func:`load_routerarena`: RouterArena's cached results (real token counts, a price table).

Every :class:`RoutingData` turns into an :class:`~robatch_opt.Instance` whose batch-size-1
cost of any plan is the data's real cost (:meth:`RoutingData.instance`), and into the proxy's
:class:`~robatch_opt.proxy.ObservationLog` (:meth:`RoutingData.to_log`). The token rule and
the cost split are in :mod:`robatch_opt.datasets.tokens`; prices in :mod:`.prices`.
"""

from __future__ import annotations

from .errors import (CostValueError, DatasetError, DuplicateQueryError, EmptyFieldError, InconsistentDataError,
                     MalformedRowError, MissingColumnError, MissingFileError, OutcomeRangeError, PromptFieldError,
                     UnknownColumnError, UnknownPriceError)
from .prices import CONTEXT_WINDOW, PRICES_PER_MTOK
from .routellm import MMLU_OUTPUT_TOKENS, load_routellm
from .routerarena import load_routerarena
from .routerbench import load_routerbench
from .routing_data import RoutingData, concat
from .tokens import CHARS_PER_TOKEN, common_prefix, estimate_tokens, split_costs

__all__ = [
    "RoutingData", "concat", "load_routerbench", "load_routellm", "load_routerarena",
    "DatasetError", "MissingFileError", "MissingColumnError", "UnknownColumnError", "PromptFieldError",
    "OutcomeRangeError", "CostValueError", "UnknownPriceError", "DuplicateQueryError", "InconsistentDataError",
    "MalformedRowError", "EmptyFieldError",
    "PRICES_PER_MTOK", "CONTEXT_WINDOW", "CHARS_PER_TOKEN", "MMLU_OUTPUT_TOKENS",
    "estimate_tokens", "common_prefix", "split_costs",
]
