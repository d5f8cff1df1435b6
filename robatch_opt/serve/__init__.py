"""Serve a plan on OpenAI-compatible endpoints: batched requests, answers split per query,
real usage and cost, a journal that loses nothing.

- :func:`run` sends each call of ``plan.calls`` to its model's endpoint (asyncio + httpx),
  retries what can be retried, asks again alone the queries a batch left unanswered, and
  returns a :class:`ServeResult`: per query an answer or a named failure, per call the
  endpoint's real usage and cost; :meth:`ServeResult.to_log` closes RoBatch's loop
  (logs -> proxy -> plan -> serve -> logs).
- Formats (:class:`NumberedFormat`, the default, and :class:`JsonArrayFormat`) write one
  call's request and parse its reply; a user's own format is any object with the same four
  methods.
- Endpoints are plain configuration (:func:`load_endpoints`: a mapping, or a TOML file);
  keys come from environment variables named there.
- :class:`Journal`: JSON Lines, one fsynced line per finished call; a killed run resumes.

Needs ``httpx`` (``pip install 'robatch_opt[serve]'``).
"""

from __future__ import annotations

from .endpoints import API_KINDS, Endpoint, check_keys, load_endpoints
from .errors import EndpointUnreachableError, JournalError, MissingKeyError, ServeConfigError, ServeError
from .executor import Progress, check_endpoints, run, run_async
from .formats import FORMATS, BatchFormat, JsonArrayFormat, NumberedFormat, get_format
from .journal import Journal, read_journal
from .result import CallRecord, QueryFailure, ServeResult, choice, exact_match, number
from .tasks import FACT_TASKS, TaskSet, arithmetic, facts

__all__ = [
    "run", "run_async", "ServeResult", "CallRecord", "QueryFailure", "Progress",
    "Endpoint", "load_endpoints", "check_endpoints", "check_keys", "API_KINDS",
    "BatchFormat", "NumberedFormat", "JsonArrayFormat", "FORMATS", "get_format",
    "Journal", "read_journal",
    "exact_match", "number", "choice",
    "TaskSet", "arithmetic", "facts", "FACT_TASKS",
    "ServeError", "ServeConfigError", "MissingKeyError", "EndpointUnreachableError", "JournalError",
]
