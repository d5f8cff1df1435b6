"""Run a plan: each call of ``plan.calls`` becomes one request to its model's endpoint.

asyncio + httpx: one client per endpoint, a global and a per-endpoint bound on requests in
flight, an optional per-endpoint rate limit, retries with exponential backoff (full jitter)
on 429, 5xx, timeouts, dropped connections and unreadable bodies, honouring ``Retry-After``.
A reply is split into per-query answers by the batch format; queries a batched reply left
unanswered are asked again alone (b = 1) and that cost is accounted. Every finished call is
appended to the journal before anything depends on it, so a killed run resumes without
sending a finished call again.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .._validate import did_you_mean
from ..evaluate import evaluate
from ..instance import Instance
from ..plan import Plan
from .endpoints import Endpoint, check_keys, load_endpoints
from .errors import EndpointUnreachableError, JournalError, ServeConfigError
from .formats import BatchFormat, get_format
from .journal import Journal, fingerprint
from .result import CallRecord, QueryFailure, ServeResult

__all__ = ["run", "run_async", "Progress", "check_endpoints"]

#: Longest wait a ``Retry-After`` header can impose (seconds); longer values are capped.
MAX_RETRY_AFTER_S = 300.0

#: ``CallRecord.error`` of a paid reply the format could not parse (the run stopped there).
FORMAT_FAILURE = "format: "

#: ``CallRecord.error`` (a note: the call is ``ok``) of answers read on resume from a reply an
#: earlier run paid for but could not parse; the record itself costs nothing.
REPARSED = "answers parsed from the reply an earlier run paid for (journal); not sent again"


@dataclass(frozen=True)
class Progress:
    """A snapshot handed to ``progress`` after every finished call.

    Attributes
    ----------
    calls_done : int
        Calls finished so far, calls read back from the journal and queries asked again
        alone included.
    calls_total : int
        Calls known so far: the plan's calls plus the queries asked again alone, which are
        added as batches leave them unanswered (the total grows during a run).
    answers : int
        Queries answered so far.
    failures : int
        Queries that will stay without an answer (a query left unanswered by its batch is
        not counted while it is still to be asked again alone).
    cost_usd : float
        Cost so far, in USD, of the finished calls, plus on resume what earlier runs spent on
        the calls started so far.
    """

    calls_done: int
    calls_total: int
    answers: int
    failures: int
    cost_usd: float


@dataclass(frozen=True)
class _CallSpec:
    key: str
    task: str
    model: str
    batch_size: int
    query_ids: tuple


class _Fatal(Exception):
    """A reply that retrying will not fix (a 4xx other than 429)."""


class _NotSent(Exception):
    """The run is ending (another call failed it): this call is not sent."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after_s = reason, retry_after_s


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _RateLimiter:
    """At most ``rate`` request starts per second (evenly spaced)."""

    def __init__(self, rate: float | None):
        self.interval = 0.0 if rate is None else 1.0 / rate
        self.next_t = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        t = max(now, self.next_t)
        self.next_t = t + self.interval
        if t > now:
            await asyncio.sleep(t - now)


def _tls(endpoints: Mapping[str, Endpoint]):
    """``verify=`` for the clients: one shared TLS context, built only if an endpoint is https.

    Each httpx client otherwise loads the CA bundle itself (about 0.3 s each).
    """
    import httpx

    if any(ep.base_url.lower().startswith("https:") for ep in endpoints.values()):
        return httpx.create_ssl_context()
    return False                             # plain http: no TLS, nothing to verify


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _validate(plan, instance, questions, system_prompts):
    if not isinstance(plan, Plan):
        raise ServeConfigError("plan", f"must be a robatch_opt Plan, got {type(plan).__name__}")
    if not isinstance(instance, Instance):
        raise ServeConfigError("instance", f"must be a robatch_opt Instance, got {type(instance).__name__}")
    if plan.n_queries != instance.n_queries:
        raise ServeConfigError("plan", f"has {plan.n_queries} queries but the instance has {instance.n_queries}")
    names = tuple(m.name for m in instance.models)
    if tuple(plan.model_names) != names:
        raise ServeConfigError("plan.model_names", f"{list(plan.model_names)} are not the instance's models "
                                                   f"{list(names)}")
    # The checks `robatch-opt evaluate` makes: a plan for another instance of the same size
    # and models would send paid calls of batch sizes or tasks the instance does not have.
    if tuple(plan.options) != tuple(instance.options):
        raise ServeConfigError("plan.options", f"{len(plan.options)} options {list(plan.options)[:6]}... are not "
                                               f"the instance's {len(instance.options)} "
                                               f"{list(instance.options)[:6]}...")
    differ = np.flatnonzero(np.asarray(plan.query_task) != np.asarray(instance.query_task))
    if differ.size:
        i = int(differ[0])
        raise ServeConfigError("plan.query_task", f"query {i} is in task {int(plan.query_task[i])} in the plan but "
                                                  f"{int(instance.query_task[i])} in the instance")
    if isinstance(questions, (str, bytes)) or not isinstance(questions, Sequence):
        raise ServeConfigError("questions", f"must be a sequence of strings (one per query), got "
                                            f"{type(questions).__name__}")
    if len(questions) != instance.n_queries:
        raise ServeConfigError("questions", f"must hold one question per query ({instance.n_queries}), "
                                            f"got {len(questions)}")
    for i, q in enumerate(questions):
        if not isinstance(q, str) or not q.strip():
            raise ServeConfigError(f"questions[{i}]", f"must be a non-empty string, got {q!r}")
        _check_text(q, f"questions[{i}]")
    tasks = [t.name for t in instance.tasks]
    prompts = {t: "" for t in tasks}
    if system_prompts is not None:
        if not isinstance(system_prompts, Mapping):
            raise ServeConfigError("system_prompts", f"must map task names to text, got "
                                                     f"{type(system_prompts).__name__}")
        for name, text in system_prompts.items():
            if name not in prompts:
                raise ServeConfigError(f"system_prompts[{name!r}]", f"is not a task of the instance; tasks: {tasks}")
            if not isinstance(text, str):
                raise ServeConfigError(f"system_prompts[{name!r}]", f"must be a string, got {type(text).__name__}")
            _check_text(text, f"system_prompts[{name!r}]")
            prompts[name] = text
    return prompts


def _check_text(text: str, field: str) -> None:
    """Text that UTF-8 can carry: a lone surrogate (a JSON escape such as "\\ud800" decodes to
    one) cannot be sent, and failed in the run's fingerprint with a UnicodeEncodeError that
    named no field."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ServeConfigError(field, f"holds {text[exc.start:exc.end]!r} at character {exc.start}, a lone "
                                      f"surrogate that is not text (fix the escape in its source)") from None


def _check_resumed(specs: list[_CallSpec], finished: Mapping[str, CallRecord], journal) -> None:
    """Every finished call read back must be the call of this run it claims to be (same
    model, task, batch size and queries; a query asked again alone, ``<call>.q<i>``, one of
    its call's queries): an edited journal raised an IndexError deep in the run."""
    by_key = {s.key: s for s in specs}
    for key, rec in finished.items():
        base, _, single = key.partition(".q")
        spec = by_key.get(base)
        if spec is None:
            raise JournalError(f"{journal}: call {key!r} is not a call of this plan; the journal is corrupt")
        want = ((spec.model, spec.task, spec.batch_size, tuple(spec.query_ids)) if not single else
                (spec.model, spec.task, 1, (int(single),) if single.isdigit() else None))
        if (rec.model, rec.task, rec.batch_size, tuple(rec.query_ids)) != want or \
                (single and int(single) not in spec.query_ids):
            raise JournalError(f"{journal}: call {key!r} does not match the plan's call (model, task, batch size "
                               "or queries differ); the journal is corrupt")


def _call_specs(plan: Plan, instance: Instance) -> list[_CallSpec]:
    table = plan.calls
    tasks = [t.name for t in instance.tasks]
    models = [m.name for m in instance.models]
    qids, off = table.query_ids.tolist(), table.offsets.tolist()
    return [_CallSpec(f"c{c}", tasks[int(table.task[c])], models[int(table.model[c])], int(table.batch_size[c]),
                      tuple(qids[off[c]:off[c + 1]])) for c in range(len(table))]


async def check_endpoints(endpoints: Mapping[str, Endpoint], *, timeout_s: float = 10.0) -> None:
    """``GET {base_url}/models`` on every endpoint: reachable, and serving its model.

    A coroutine. The endpoints are checked concurrently; the first failure is raised and the
    other checks are cancelled. A reply that is JSON but not an OpenAI-style model list
    (``{"data": [{"id": ...}, ...]}``), or an empty list, passes unchecked.

    Parameters
    ----------
    endpoints : mapping of str to Endpoint
        Model name (as named in errors) -> its endpoint, e.g. from :func:`load_endpoints`.
    timeout_s : float
        Timeout of each ``GET``, in seconds.

    Raises
    ------
    EndpointUnreachableError
        An endpoint did not answer, or answered with an error status, or with a 200 whose
        body is not JSON (a web page: ``base_url`` is likely wrong).
    ServeConfigError
        An endpoint answered but does not list the configured model.
    MissingKeyError
        An endpoint's key variable is unset or empty. Its field is ``api_key_env``, without
        the model: :func:`check_keys`, called first, names the model.
    """
    import httpx

    async def one(name: str, ep: Endpoint, client: httpx.AsyncClient):
        key = ep.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = ep.base_url.rstrip("/") + "/models"
        try:
            resp = await client.get(url, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise EndpointUnreachableError(f"endpoint of model {name!r} unreachable: GET {url}: "
                                           f"{type(exc).__name__}: {_short(exc) or 'no reply'}") from None
        if resp.status_code != 200:
            raise EndpointUnreachableError(f"endpoint of model {name!r}: GET {url} returned HTTP "
                                           f"{resp.status_code}: {_short(resp.text)}")
        # An OpenAI-compatible server lists its models as {"data": [{"id": ...}, ...]}. A 200
        # that is not JSON (a web page: the wrong base_url) was let through, and every call
        # then failed (new-user audit); JSON of another shape, or an empty list, is a
        # provider's own way and is not checked further.
        try:
            body = resp.json()
        except ValueError:
            raise EndpointUnreachableError(f"endpoint of model {name!r}: GET {url} did not answer JSON (is "
                                           f"base_url right?): {_short(resp.text)}") from None
        try:
            listed = [str(m.get("id")) for m in body.get("data", [])]
        except (AttributeError, TypeError):
            return                          # JSON of its own shape: nothing to check
        if listed and ep.model not in listed:
            raise ServeConfigError(f"endpoints[{name!r}].model", f"{ep.base_url} does not serve {ep.model!r} "
                                                                 f"(it lists {listed[:10]})")

    async with httpx.AsyncClient(trust_env=False, verify=_tls(endpoints)) as client:
        tasks = [asyncio.ensure_future(one(n, ep, client)) for n, ep in endpoints.items()]
        try:
            await asyncio.gather(*tasks)
        finally:
            # gather() returns at the first failure with the other checks still running: end
            # them before the client closes under them (their half-open connections warned
            # "coroutine ... was never awaited" on stderr after the one-line error).
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class _Runner:
    """The state of one run: clients, limits, journal, finished records."""

    def __init__(self, *, instance, endpoints, prompts, questions, fmt: BatchFormat, journal: Journal | None,
                 max_concurrency, retries, timeout_s, backoff_s, max_backoff_s, progress, n_calls, ask_alone):
        import httpx

        self.httpx = httpx
        self.prices = {m.name: (m.price_in, m.price_out) for m in instance.models}
        self.endpoints, self.prompts, self.questions, self.fmt = endpoints, prompts, questions, fmt
        self.journal = journal
        self.stopping = False                      # set when a failure ends the run (see run_async)
        self.retries, self.timeout_s = retries, timeout_s
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.global_sem = asyncio.Semaphore(max_concurrency)
        self.ep_sem = {n: asyncio.Semaphore(ep.max_concurrency or max_concurrency) for n, ep in endpoints.items()}
        self.limiter = {n: _RateLimiter(ep.requests_per_s) for n, ep in endpoints.items()}
        self.clients = {}
        verify = _tls(endpoints)
        for n, ep in endpoints.items():
            key = ep.api_key()
            conc = min(ep.max_concurrency or max_concurrency, max_concurrency)
            self.clients[n] = httpx.AsyncClient(
                headers={"Authorization": f"Bearer {key}"} if key else {},
                limits=httpx.Limits(max_connections=conc, max_keepalive_connections=conc),
                timeout=timeout_s, trust_env=False, verify=verify)
        self.progress = progress
        self.ask_alone = ask_alone
        self.n_calls, self.done = n_calls, 0
        self.answered, self.failed, self.cost = 0, 0, 0.0
        self.rng = random.Random()

    async def aclose(self):
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))

    def _payload(self, ep: Endpoint, spec: _CallSpec) -> tuple[dict, str]:
        qs = [self.questions[q] for q in spec.query_ids]
        system = self.prompts[spec.task]
        body = {"model": ep.model, "max_tokens": ep.max_tokens(len(qs)), "temperature": ep.temperature}
        if ep.api == "chat":
            body["messages"] = self.fmt.messages(system, qs)
            return body, ""
        prompt, prefix = self.fmt.prompt(system, qs)
        body["prompt"] = prompt
        stop = self.fmt.stop(len(qs))
        if stop:
            body["stop"] = stop
        return body, prefix

    async def _post(self, spec: _CallSpec, ep: Endpoint, body: dict,
                    started: list) -> tuple[str, str | None, dict | None]:
        """One request; returns (text, finish_reason, usage) or raises _Retryable / _Fatal.

        ``started`` receives the time the first attempt was let through the limits, so that a
        call's seconds count its requests (and retry waits), not its wait for a free slot.
        """
        httpx = self.httpx
        async with self.ep_sem[spec.model], self.global_sem:
            await self.limiter[spec.model].wait()
            if self.stopping:                     # the run ended while this call waited
                raise _NotSent()
            if not started:
                started.append(time.perf_counter())
            try:
                resp = await self.clients[spec.model].post(ep.url, json=body)
            except httpx.TimeoutException:
                raise _Retryable("timeout") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"connection: {type(exc).__name__}: {_short(exc)}") from None
        code = resp.status_code
        if code == 429 or code >= 500:
            raise _Retryable(f"http {code}: {_short(resp.text)}", _retry_after(resp.headers.get("retry-after")))
        if code != 200:
            raise _Fatal(f"http {code}: {_short(resp.text)}")
        try:
            data = resp.json()
            choice = data["choices"][0]
            if ep.api == "chat":
                text = (choice.get("message") or {}).get("content") or ""
            else:
                text = choice.get("text") or ""
            if not isinstance(text, str):
                raise TypeError(f"reply text is {type(text).__name__}")
            finish = choice.get("finish_reason")
            usage = data.get("usage")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _Retryable(f"bad response: {type(exc).__name__}: {_short(exc)}; body {_short(resp.text, 80)!r}") from None
        return text, finish, usage if isinstance(usage, dict) else None

    async def send(self, spec: _CallSpec) -> CallRecord:
        ep = self.endpoints[spec.model]
        body, prefix = self._payload(ep, spec)
        started: list = []
        attempts, error = 0, None
        n = len(spec.query_ids)
        for attempt in range(self.retries + 1):
            if self.stopping:
                raise _NotSent()
            attempts += 1
            try:
                text, finish, usage = await self._post(spec, ep, body, started)
            except _Fatal as exc:
                error = str(exc)
                break
            except _Retryable as exc:
                error = exc.reason
                if attempt == self.retries:
                    break
                delay = self.rng.uniform(0.5, 1.0) * min(self.backoff_s * 2.0 ** attempt, self.max_backoff_s)
                if exc.retry_after_s is not None:
                    delay = max(delay, min(exc.retry_after_s, MAX_RETRY_AFTER_S))
                await asyncio.sleep(delay)
                continue
            reply = prefix + text
            p_tok, c_tok, usage_error = _usage_tokens(usage)
            p_in, p_out = self.prices[spec.model]
            paid = dict(key=spec.key, model=spec.model, task=spec.task, query_ids=spec.query_ids,
                        batch_size=spec.batch_size, prompt_tokens=p_tok, completion_tokens=c_tok,
                        cost_usd=(p_tok * p_in + c_tok * p_out) / 1e6, attempts=attempts,
                        seconds=time.perf_counter() - started[0], finish_reason=finish, reply=reply)
            answers, what = self._parse(reply, n, finish)
            if what is not None:
                # No request starts from now on (set before the journal's await lets others run).
                # The reply was paid for: journal it (failed, with its usage and text) before the
                # run stops, so that nothing spent goes unaccounted; a resume parses it again
                # rather than buying it again (_resumed_or_sent).
                self.stopping = True
                if self.journal is not None:
                    await self.journal.append_async(CallRecord(**paid, answers=(None,) * n, status="failed",
                                                               error=f"{FORMAT_FAILURE}{what}"))
                raise ServeConfigError("format", f"{what} (call {spec.key}; its reply is in the journal)"
                                       if self.journal is not None else f"{what} (call {spec.key})")
            return CallRecord(**paid, answers=answers, status="ok", error=usage_error)
        return CallRecord(key=spec.key, model=spec.model, task=spec.task, query_ids=spec.query_ids,
                          batch_size=spec.batch_size, answers=(None,) * n, attempts=attempts,
                          seconds=time.perf_counter() - started[0], status="failed", error=error)

    def _parse(self, reply: str, n: int, finish) -> tuple[tuple, str | None]:
        """``(answers, None)``, or ``((), what went wrong)`` when the format raised or returned
        another number of answers than ``n`` (a user's format: its bug, named)."""
        try:
            answers = tuple(self.fmt.parse(reply, n, truncated=finish == "length"))
        except Exception as exc:
            return (), f"{type(self.fmt).__name__}.parse raised {type(exc).__name__}: {_short(exc)}"
        if len(answers) != n:
            return (), f"{type(self.fmt).__name__}.parse returned {len(answers)} answers for {n} questions"
        return answers, None

    def _reparsed(self, spec: _CallSpec, paid: CallRecord) -> CallRecord:
        """The answers of a reply an earlier run paid for and could not parse (its format
        failed), read again with this run's format: nothing is sent, nothing is paid again
        (the earlier record keeps the cost). The format still failing stops the run again."""
        n = len(spec.query_ids)
        answers, what = self._parse(paid.reply, n, paid.finish_reason)
        if what is not None:
            self.stopping = True
            raise ServeConfigError("format", f"{what} (call {spec.key}; the reply an earlier run paid for, "
                                             f"read from the journal, not bought again)")
        return CallRecord(key=spec.key, model=spec.model, task=spec.task, query_ids=spec.query_ids,
                          batch_size=spec.batch_size, answers=answers, attempts=0, status="ok",
                          error=REPARSED, finish_reason=paid.finish_reason, reply=paid.reply)

    async def _finished(self, rec: CallRecord, fresh: bool, final: Sequence[bool]) -> None:
        if fresh and self.journal is not None:
            await self.journal.append_async(rec)
        self.done += 1
        self.cost += rec.cost_usd
        for a, is_final in zip(rec.answers, final):
            if a is not None:
                self.answered += 1
            elif is_final:
                self.failed += 1
        if self.progress is not None:
            self.progress(Progress(self.done, self.n_calls, self.answered, self.failed, self.cost))

    async def _resumed_or_sent(self, spec: _CallSpec) -> tuple[list[CallRecord], CallRecord, bool]:
        """``(earlier, record, fresh)``: the journal's record of ``spec`` when it finished
        well; else a new attempt. A call that failed in an earlier run (an outage, a time-out)
        is sent again on resume (resume re-sent nothing that had failed: new-user audit),
        except a reply whose format failed: it was paid for, and is parsed again instead.
        Every earlier record of the call -- each run's failed attempt, before the one that
        answered -- is in ``earlier`` and in the running cost, so what it spent and how often
        it was tried are still accounted for however many times the run is resumed."""
        history = self.journal.history.get(spec.key, []) if self.journal is not None else []
        ok = bool(history) and history[-1].status == "ok"
        earlier = history[:-1] if ok else list(history)
        self.cost += sum(r.cost_usd for r in earlier)
        if ok:
            return earlier, history[-1], False
        last = history[-1] if history else None
        if last is not None and last.reply and (last.error or "").startswith(FORMAT_FAILURE):
            return earlier, self._reparsed(spec, last), True
        return earlier, await self.send(spec), True

    async def one(self, spec: _CallSpec) -> list[CallRecord]:
        earlier, rec, fresh = await self._resumed_or_sent(spec)
        retry_alone = self.ask_alone and rec.status == "ok" and len(spec.query_ids) > 1
        await self._finished(rec, fresh, [not retry_alone] * len(spec.query_ids))
        out = earlier + [rec]
        if not retry_alone:
            return out
        singles = [_CallSpec(f"{spec.key}.q{q}", spec.task, spec.model, 1, (q,))
                   for q, a in zip(spec.query_ids, rec.answers) if a is None]
        self.n_calls += len(singles)

        async def single(s: _CallSpec) -> list[CallRecord]:
            before, r, new = await self._resumed_or_sent(s)
            await self._finished(r, new, [True])
            return before + [r]
        for recs in await asyncio.gather(*(single(s) for s in singles)):
            out.extend(recs)
        return out


def _usage_tokens(usage) -> tuple[int, int, str | None]:
    """Prompt and completion tokens of a reply's ``usage``, and what is wrong with it.

    Counts must be non-negative integers (JSON numbers): a missing, negative, fractional or
    textual count is not billed here as given (it was: "-1,600 prompt tokens", a negative
    cost); the call's ``error`` says so and its cost is unknown, counted as $0.
    """
    if not usage:
        return 0, 0, "no usage reported"
    if not isinstance(usage, dict):
        return 0, 0, f"usage not valid: {str(usage)[:80]!r}"
    counts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens")]
    bad = [f"{key}={v!r}" for key, v in zip(("prompt_tokens", "completion_tokens"), counts)
           if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0)]
    if bad:                                # one bad count makes the pair unknown: $0, flagged
        return 0, 0, f"usage not valid: {', '.join(bad)}"
    return counts[0], counts[1], None


def _assemble(specs, per_call, n, plan, instance, wall, n_resumed) -> ServeResult:
    answers: list = [None] * n
    failures: dict[int, QueryFailure] = {}
    attempts_q = [0] * n
    last = {}
    calls = []
    for recs in per_call:
        calls.extend(recs)
        for rec in recs:
            for q, a in zip(rec.query_ids, rec.answers):
                attempts_q[q] += rec.attempts
                last[q] = rec
                if a is not None:
                    answers[q] = a
    for q in range(n):
        if answers[q] is None:
            rec = last[q]
            reason = rec.error if rec.status == "failed" else "unanswered"
            failures[q] = QueryFailure(reason=reason, attempts=attempts_q[q], call_key=rec.key)
    return ServeResult(
        answers=tuple(answers), failures=failures, calls=tuple(calls),
        # The prediction is the instance's own grading of the plan, not the file's claim.
        cost_usd=float(sum(c.cost_usd for c in calls)), predicted_cost_usd=float(evaluate(instance, plan.option).cost_usd),
        prompt_tokens=int(sum(c.prompt_tokens for c in calls)),
        completion_tokens=int(sum(c.completion_tokens for c in calls)), wall_time_s=wall, n_resumed=n_resumed,
        model_names=tuple(m.name for m in instance.models), task_names=tuple(t.name for t in instance.tasks),
        query_task=instance.query_task, input_tokens=instance.input_tokens)


async def run_async(plan: Plan, instance: Instance, questions: Sequence[str], endpoints, *,
                    system_prompts: Mapping[str, str] | None = None, journal=None, max_concurrency: int = 8,
                    retries: int = 3, timeout_s: float = 60.0, format=None, backoff_s: float = 0.5,
                    max_backoff_s: float = 30.0, check: bool = True, ask_alone: bool = True,
                    progress: Callable[[Progress], None] | None = None, fsync: bool = True) -> ServeResult:
    """The coroutine behind :func:`run` (for callers that already run an event loop).

    Takes the same arguments as :func:`run`, with the same defaults and meaning, and returns
    and raises the same; see :func:`run` for each. The options that :func:`run` takes as
    ``**options`` are keyword arguments of their own here, so an unknown one is a
    ``TypeError`` (:func:`run` names it in a :class:`ServeConfigError`).

    Parameters
    ----------
    plan, instance, questions, endpoints, system_prompts, journal, max_concurrency, retries, timeout_s
        As :func:`run`.
    format, backoff_s, max_backoff_s, check, ask_alone, progress, fsync
        The ``**options`` of :func:`run`.

    Returns
    -------
    ServeResult
        As :func:`run`.

    Raises
    ------
    ServeConfigError, EndpointUnreachableError, JournalError
        As :func:`run`.
    """
    t0 = time.perf_counter()
    prompts = _validate(plan, instance, questions, system_prompts)
    for name, value, lo in (("max_concurrency", max_concurrency, 1), ("retries", retries, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ServeConfigError(name, f"must be an integer >= {lo}, got {value!r}")
    # A request needs time to be answered (0 failed every query at no cost, with no error).
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0 \
            or not math.isfinite(timeout_s):
        raise ServeConfigError("timeout_s", f"must be a finite number > 0, got {timeout_s!r}")
    for name, value in (("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ServeConfigError(name, f"must be a number >= 0, got {value!r}")
    for name, value in (("check", check), ("ask_alone", ask_alone), ("fsync", fsync)):
        if not isinstance(value, bool):
            raise ServeConfigError(name, f"must be True or False, got {value!r}")
    if progress is not None and not callable(progress):
        # It crashed mid-run (after requests were sent and paid) with "'int' object is not callable".
        raise ServeConfigError("progress", f"must be callable or None, got {type(progress).__name__}")
    fmt = get_format(format)
    specs = _call_specs(plan, instance)
    used = sorted({s.model for s in specs})
    eps = load_endpoints(endpoints, used)
    eps = {m: eps[m] for m in used}
    check_keys(eps, source=str(endpoints) if isinstance(endpoints, (str, os.PathLike)) else None)
    # What a resumed run must share with the journal's: also each endpoint's served model and
    # api (resuming against another model mixed two models' answers under one name). Not
    # base_url (a server may move), prices (each call is billed at its own run's prices),
    # temperature or max_tokens_per_answer (raising it is how cut-off answers are fixed).
    parts = {"format": getattr(fmt, "name", type(fmt).__name__), "ask_alone": bool(ask_alone),
             "calls": [[s.task, s.model, s.batch_size, list(s.query_ids)] for s in specs],
             "questions": list(questions), "system_prompts": prompts,
             "endpoints": [[m, ep.model, ep.api] for m, ep in eps.items()]}
    fp = fingerprint(parts.values())
    # Journals written before the endpoints were part of a run (robatch_opt <= 0.x of
    # 2026-12-04): the same run if the other five parts agree (their header has no "parts").
    legacy_fp = fingerprint(list(parts.values())[:5])
    check_s = min(timeout_s, 10.0)
    jr = None
    if journal is not None:
        fresh = not os.path.exists(journal) or os.path.getsize(journal) == 0
        if check and fresh:
            # Before the journal file exists: a run that cannot start leaves no file behind.
            await check_endpoints(eps, timeout_s=check_s)
            check = False
        jr = Journal(journal, fp, {"n_queries": instance.n_queries, "n_calls": len(specs),
                                   "parts": {k: fingerprint([v]) for k, v in parts.items()}}, fsync=fsync,
                     legacy_fingerprints=(legacy_fp,))
    try:
        finished = jr.finished if jr is not None else {}
        _check_resumed(specs, finished, journal)
        done_ok = {k for k, r in finished.items() if r.status == "ok"}
        todo = {s.model for s in specs if s.key not in done_ok}
        if check and todo:
            await check_endpoints({m: eps[m] for m in sorted(todo)}, timeout_s=check_s)
        n_resumed = len(done_ok)
        runner = _Runner(instance=instance, endpoints=eps, prompts=prompts, questions=questions, fmt=fmt,
                         journal=jr, max_concurrency=max_concurrency, retries=retries, timeout_s=timeout_s,
                         backoff_s=backoff_s, max_backoff_s=max_backoff_s, progress=progress, n_calls=len(specs),
                         ask_alone=ask_alone)
        tasks = [asyncio.ensure_future(runner.one(s)) for s in specs]
        try:
            per_call = await asyncio.gather(*tasks)
        except Exception as first:
            # A call failed in a way that ends the run (a broken format, a journal that cannot
            # be written). The others must not run on against closed clients and a closed
            # journal, and the requests in flight were paid for: start no new request, let
            # those in flight finish and be journaled, then raise the failure (not the
            # _NotSent of a call that saw the run ending first).
            runner.stopping = True
            results = await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(first, _NotSent):
                failures = [r for r in results if isinstance(r, Exception) and not isinstance(r, _NotSent)]
                if failures:
                    raise failures[0] from None
            raise
        finally:
            await runner.aclose()
    finally:
        if jr is not None:
            await jr.aclose()
    return _assemble(specs, per_call, instance.n_queries, plan, instance, time.perf_counter() - t0, n_resumed)


def run(plan: Plan, instance: Instance, questions: Sequence[str], endpoints, *,
        system_prompts: Mapping[str, str] | None = None, journal=None, max_concurrency: int = 8,
        retries: int = 3, timeout_s: float = 60.0, **options) -> ServeResult:
    """Serve a plan on OpenAI-compatible endpoints; split, account and journal every call.

    Parameters
    ----------
    plan : Plan
        From :func:`robatch_opt.solve` on ``instance``.
    instance : Instance
        Gives the task and model names and the models' prices (USD per 1M tokens).
    questions : sequence of str
        One question per query.
    endpoints : mapping or str or path
        Model name -> ``{"base_url", "model", "api", "api_key_env", ...}`` (see
        :mod:`robatch_opt.serve.endpoints`), or a TOML file of the same.
    system_prompts : mapping of task name to str, optional
        Instructions and few-shot examples, sent once per call (default empty).
    journal : str or path, optional
        JSON Lines journal; an existing journal of the same run is resumed (its finished
        calls are not sent again), one of another run is refused (:class:`JournalError`).
    max_concurrency : int
        Requests in flight over all endpoints (each endpoint may set a lower bound).
    retries : int
        Further attempts after a 429, a 5xx, a timeout, a dropped connection or an
        unreadable body.
    timeout_s : float
        Per request.
    **options
        ``format`` (a :class:`BatchFormat` or ``"numbered"`` / ``"json"``), ``backoff_s``
        (first backoff, default 0.5; doubled per attempt, full jitter), ``max_backoff_s``
        (30), ``check`` (check every endpoint's ``/models`` first, default True),
        ``ask_alone`` (default True; False leaves queries a batch did not answer as failures,
        e.g. to measure batch accuracy as such),
        ``progress`` (callable receiving a :class:`Progress` after every call), ``fsync``.

    Returns
    -------
    ServeResult

    Raises
    ------
    ServeConfigError
        Bad questions, system prompts, endpoints (file or mapping) or format; a missing key
        variable (:class:`MissingKeyError`). Raised before any request, except for a
        format whose ``parse`` raises or returns a list of the wrong length: found at its
        first reply, which is journaled (failed, with its usage and text); no new request
        starts, those in flight finish and are journaled, then the error is raised.
    EndpointUnreachableError
        An endpoint failed its ``/models`` check (before any call is sent).
    JournalError
        The journal belongs to another run or is corrupt.

    Notes
    -----
    A call's cost is its reported usage at the model's prices,
    ``(prompt_tokens * price_in + completion_tokens * price_out) / 1e6``. Failed requests
    (no reply) cost nothing. Requires ``httpx`` (``pip install 'robatch_opt[serve]'``).
    """
    known = [p for p in inspect.signature(run_async).parameters
             if p not in ("plan", "instance", "questions", "endpoints")]
    for key in options:
        if key not in known:
            raise ServeConfigError(key, "is not an option of serve.run" +
                                   (did_you_mean(key, known) or f"; options: {', '.join(known)}"))
    return asyncio.run(run_async(plan, instance, questions, endpoints, system_prompts=system_prompts,
                                 journal=journal, max_concurrency=max_concurrency, retries=retries,
                                 timeout_s=timeout_s, **options))
