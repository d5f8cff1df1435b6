"""Published prices and context windows of the models in the bundled loaders' sources.

Prices are USD per million input / output tokens.

RouterBench (Hu et al., 2024) priced each query with these per-model prices: with them,
every one of the 2,225 x 11 ``total_cost`` cells of the three training splits divides into
an integer number of tokens (checked by ``tests/test_datasets.py``), which is how the
table was confirmed. They are the providers' list prices at the time (OpenAI and Anthropic
price pages, Nov-Dec 2023; Together AI for the open models). RouteLLM's two models are
priced the same way (gpt-4-1106-preview: OpenAI, $10 / $30; Mixtral-8x7B-Instruct-v0.1:
Together AI, $0.60 / $0.60, the price RouterBench's mixtral-8x7b-chat costs imply).

Context windows (tokens) are the providers' published limits for these model versions;
they only decide which batch sizes fit and never change a batch-size-1 cost.
"""

from __future__ import annotations

__all__ = ["PRICES_PER_MTOK", "CONTEXT_WINDOW", "DEFAULT_CONTEXT_WINDOW"]

#: ``{model: (input, output)}`` in USD per million tokens.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    # RouterBench's models (as named in its CSV columns)
    "gpt-4-1106-preview": (10.0, 30.0),
    "gpt-3.5-turbo-1106": (1.0, 2.0),
    "claude-instant-v1": (0.8, 2.4),
    "claude-v1": (8.0, 24.0),
    "claude-v2": (8.0, 24.0),
    "meta/llama-2-70b-chat": (0.9, 0.9),
    "mistralai/mixtral-8x7b-chat": (0.6, 0.6),
    "zero-one-ai/Yi-34B-Chat": (0.8, 0.8),
    "WizardLM/WizardLM-13B-V1.2": (0.3, 0.3),
    "meta/code-llama-instruct-34b-chat": (0.776, 0.776),
    "mistralai/mistral-7b-chat": (0.2, 0.2),
    # RouteLLM's models
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (0.6, 0.6),
}

#: Published context windows in tokens.
CONTEXT_WINDOW: dict[str, int] = {
    "gpt-4-1106-preview": 128_000,
    "gpt-3.5-turbo-1106": 16_385,
    "claude-instant-v1": 100_000,
    "claude-v1": 100_000,
    "claude-v2": 100_000,
    "meta/llama-2-70b-chat": 4_096,
    "mistralai/mixtral-8x7b-chat": 32_768,
    "zero-one-ai/Yi-34B-Chat": 4_096,
    "WizardLM/WizardLM-13B-V1.2": 4_096,
    "meta/code-llama-instruct-34b-chat": 16_384,
    "mistralai/mistral-7b-chat": 8_192,
    "mistralai/Mixtral-8x7B-Instruct-v0.1": 32_768,
    "claude-3-haiku-20240307": 200_000,
    "gemini-2.0-flash-001": 1_048_576,
}

#: Window assumed for a model the table does not list.
DEFAULT_CONTEXT_WINDOW = 128_000
