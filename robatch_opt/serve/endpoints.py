"""Endpoints: where each model of an instance is served (plain configuration, no secrets).

An endpoint is an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, a LiteLLM proxy) given
by its base URL (with the ``/v1``), the model name it serves, the API kind (``"chat"`` for
``/chat/completions``, ``"completions"`` for ``/completions``) and the *name* of the
environment variable that holds its key; the key itself is never written in a file.

As a mapping (``ro.serve.run``)::

    {"Qwen3-8B": {"base_url": "http://127.0.0.1:8000/v1", "model": "Qwen/Qwen3-8B",
                  "api": "chat", "api_key_env": "VLLM_KEY"}}

As TOML (``robatch-opt serve --endpoints FILE``), one table per model of the instance::

    ["Qwen3-8B"]
    base_url = "http://127.0.0.1:8000/v1"
    model = "Qwen/Qwen3-8B"
    api = "chat"
    api_key_env = "VLLM_KEY"       # optional: no Authorization header without it
    max_concurrency = 4            # optional: requests in flight to this endpoint
    requests_per_s = 5.0           # optional: rate limit (request starts per second)
    max_tokens_per_answer = 64     # optional: a call of b questions may write b times this
    temperature = 0.0              # optional
"""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass, fields
from typing import Any, Mapping
from urllib.parse import urlparse

from .errors import MissingKeyError, ServeConfigError

try:
    import tomllib
except ImportError:                     # Python 3.10: the same parser, as the `tomli` package
    import tomli as tomllib

__all__ = ["Endpoint", "load_endpoints", "check_keys", "API_KINDS"]

#: An environment variable's name (POSIX): what ``api_key_env`` must be.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: API kinds and the path each one posts to (relative to the base URL).
API_KINDS = {"chat": "/chat/completions", "completions": "/completions"}


@dataclass(frozen=True)
class Endpoint:
    """One model's OpenAI-compatible endpoint.

    Attributes
    ----------
    base_url : str
        ``http(s)://host:port/v1`` (the path prefix the OpenAI client calls ``base_url``).
    model : str
        The served model name sent in each request's ``model`` field.
    api : {"chat", "completions"}
    api_key_env : str or None
        Name of the environment variable holding the key (None: no key).
    max_concurrency : int or None
        Requests in flight to this endpoint at once (None: only the run's global limit).
    requests_per_s : float or None
        Rate limit: at most this many request starts per second (None: unlimited).
    max_tokens_per_answer : int
        A call of ``b`` questions may write ``b * max_tokens_per_answer`` tokens (plus 8).
    temperature : float
    """

    base_url: str
    model: str
    api: str = "chat"
    api_key_env: str | None = None
    max_concurrency: int | None = None
    requests_per_s: float | None = None
    max_tokens_per_answer: int = 64
    temperature: float = 0.0

    @property
    def url(self) -> str:
        """The URL a call is posted to.

        Returns
        -------
        str
            :attr:`base_url` without its trailing ``/``, followed by the path of :attr:`api`
            in :data:`API_KINDS` (``/chat/completions`` or ``/completions``).

        Raises
        ------
        KeyError
            :attr:`api` is not a kind of :data:`API_KINDS` (an Endpoint built by hand;
            :func:`load_endpoints` refuses it).
        """
        return self.base_url.rstrip("/") + API_KINDS[self.api]

    def api_key(self) -> str | None:
        """The key from the environment (MissingKeyError if the variable is unset or empty).

        Read at each call, never stored: the key stays out of the endpoint's repr and files.

        Returns
        -------
        str or None
            The value of the variable :attr:`api_key_env`; None when no variable is named
            (no ``Authorization`` header is sent).

        Raises
        ------
        MissingKeyError
            The variable is not set, or set but empty. The error names the variable and the
            base URL, never a key.
        """
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise MissingKeyError("api_key_env", f"environment variable {self.api_key_env!r} "
                                                 f"(the key of {self.base_url}) is "
                                                 f"{'not set' if key is None else 'set but empty'}")
        return key

    def max_tokens(self, n_questions: int) -> int:
        """``max_tokens`` of a call of ``n_questions`` questions.

        Parameters
        ----------
        n_questions : int
            Questions in the call.

        Returns
        -------
        int
            ``n_questions * max_tokens_per_answer + 8`` tokens, sent as the request's
            ``max_tokens``.
        """
        return int(n_questions) * self.max_tokens_per_answer + 8


_FIELDS = {f.name for f in fields(Endpoint)}


def _endpoint(name: str, spec: Any, source: str | None) -> Endpoint:
    where = f"endpoints[{name!r}]"
    if isinstance(spec, Endpoint):
        # The same checks as a table of settings (an Endpoint built by hand skipped them all:
        # an unknown api failed mid-run with a bare KeyError, a pasted key was echoed).
        spec = {f.name: getattr(spec, f.name) for f in fields(Endpoint)}
    if not isinstance(spec, Mapping):
        raise ServeConfigError(where, f"must be a table of settings, got {type(spec).__name__}", source=source)
    unknown = sorted(set(spec) - _FIELDS)
    if unknown:
        raise ServeConfigError(f"{where}.{unknown[0]}", f"unknown setting; known: {sorted(_FIELDS)}",
                               source=source)
    for req in ("base_url", "model"):
        if req not in spec:
            raise ServeConfigError(f"{where}.{req}", "is required", source=source)
    d = dict(spec)
    for key in ("base_url", "model"):
        if not isinstance(d[key], str) or not d[key].strip():
            raise ServeConfigError(f"{where}.{key}", f"must be a non-empty string, got {d[key]!r}", source=source)
    d["base_url"] = d["base_url"].strip()
    url = urlparse(d["base_url"])
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ServeConfigError(f"{where}.base_url", f"must be an http(s) URL, got {d['base_url']!r}",
                               source=source)
    api = d.get("api", "chat")
    if not isinstance(api, str) or api not in API_KINDS:
        raise ServeConfigError(f"{where}.api", f"must be one of {sorted(API_KINDS)}, got {api!r}", source=source)
    env = d.get("api_key_env")
    if env is not None and (not isinstance(env, str) or not _ENV_NAME.fullmatch(env)):
        # Never echo a string that is not a variable name: it may be the key itself, pasted
        # in by mistake, and the message ends up in logs.
        shown = repr(env) if not isinstance(env, str) else f"a string of {len(env)} characters"
        raise ServeConfigError(f"{where}.api_key_env", f"must be the name of an environment variable (letters, "
                                                       f"digits and _; the variable holds the key), got {shown}",
                               source=source)
    # numbers.Integral / Real: NumPy scalars (an Endpoint built from an array's values) count.
    conc = d.get("max_concurrency")
    if conc is not None and (isinstance(conc, bool) or not isinstance(conc, numbers.Integral) or conc < 1):
        raise ServeConfigError(f"{where}.max_concurrency", f"must be an integer >= 1, got {conc!r}", source=source)
    rate = d.get("requests_per_s")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, numbers.Real)
                             or not math.isfinite(rate) or rate <= 0):
        raise ServeConfigError(f"{where}.requests_per_s", f"must be a number > 0, got {rate!r}", source=source)
    mt = d.get("max_tokens_per_answer", 64)
    if isinstance(mt, bool) or not isinstance(mt, numbers.Integral) or mt < 1:
        raise ServeConfigError(f"{where}.max_tokens_per_answer", f"must be an integer >= 1, got {mt!r}",
                               source=source)
    temp = d.get("temperature", 0.0)
    if isinstance(temp, bool) or not isinstance(temp, numbers.Real) or not math.isfinite(temp) or temp < 0:
        raise ServeConfigError(f"{where}.temperature", f"must be a number >= 0, got {temp!r}", source=source)
    return Endpoint(base_url=d["base_url"], model=d["model"], api=api, api_key_env=env,
                    max_concurrency=None if conc is None else int(conc),
                    requests_per_s=None if rate is None else float(rate),
                    max_tokens_per_answer=int(mt), temperature=float(temp))


def check_keys(endpoints: Mapping[str, Endpoint], *, source: str | None = None) -> None:
    """Every endpoint's key variable is set (before anything is sent).

    Parameters
    ----------
    endpoints : mapping of str to Endpoint
    source : str, optional
        The endpoints file, named in the error.

    Raises
    ------
    MissingKeyError
        Naming ``endpoints[model].api_key_env`` (and the file), never the key's value.
    """
    for name, ep in endpoints.items():
        try:
            ep.api_key()
        except MissingKeyError as exc:
            raise MissingKeyError(f"endpoints[{name!r}].api_key_env", exc.detail, source=source) from None


def load_endpoints(endpoints, model_names=None) -> dict[str, Endpoint]:
    """Validate endpoints given as a mapping, or read them from a TOML file.

    Parameters
    ----------
    endpoints : mapping or str or path
        Model name -> settings (a mapping or an :class:`Endpoint`), or a ``.toml`` file of
        one table per model.
    model_names : sequence of str, optional
        Models that need an endpoint (those of the plan); a missing one is an error.

    Returns
    -------
    dict of str to Endpoint

    Raises
    ------
    ServeConfigError
        Naming the file, the model and the setting.
    """
    source = None
    if isinstance(endpoints, (str, os.PathLike)):
        source = str(endpoints)
        try:
            with open(endpoints, "rb") as fh:
                # A byte-order mark (an editor's "UTF-8 with BOM") is not TOML; drop it.
                data = tomllib.loads(fh.read().decode("utf-8-sig"))
        except FileNotFoundError:
            raise ServeConfigError("endpoints", "file not found", source=source) from None
        except tomllib.TOMLDecodeError as exc:
            raise ServeConfigError("endpoints", f"not valid TOML: {exc}", source=source) from exc
        except UnicodeDecodeError as exc:
            raise ServeConfigError("endpoints", f"not UTF-8 text (byte {exc.start})", source=source) from None
        except OSError as exc:
            raise ServeConfigError("endpoints", f"cannot read: {exc.strerror or exc}", source=source) from exc
        endpoints = data
    if not isinstance(endpoints, Mapping):
        raise ServeConfigError("endpoints", f"must be a mapping of model name to settings, got "
                                            f"{type(endpoints).__name__}", source=source)
    out = {str(name): _endpoint(str(name), spec, source) for name, spec in endpoints.items()}
    if model_names is not None:
        missing = [m for m in model_names if m not in out]
        if missing:
            raise ServeConfigError(f"endpoints[{missing[0]!r}]", f"no endpoint for model {missing[0]!r} of the plan "
                                                                 f"(given: {sorted(out)})", source=source)
    return out
