"""``robatch-opt serve``: the command-line side of :func:`robatch_opt.serve.run`.

The argument parser and the one-line error handling live in :mod:`robatch_opt.cli`; this
module reads the questions and system-prompt files, draws the progress line and prints the
summary.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .._files import check_output_path, open_atomic
from .errors import ServeConfigError

__all__ = ["add_arguments", "serve_command", "read_questions", "read_system_prompts"]


def add_arguments(p) -> None:
    """The ``serve`` subcommand's arguments (on an argparse parser)."""
    p.add_argument("instance", metavar="INSTANCE", help="instance file (.json or .npz)")
    p.add_argument("plan", metavar="PLAN", help="plan file written by `solve --out`")
    p.add_argument("--questions", required=True, metavar="FILE",
                   help="one question per query: .txt (one per line), .json (a list of strings) or "
                        ".jsonl (a string or {\"question\": ...} per line)")
    p.add_argument("--endpoints", required=True, metavar="FILE.toml",
                   help="one table per model: base_url, model, api, api_key_env (see README)")
    p.add_argument("--journal", required=True, metavar="RUN.jsonl",
                   help="append-only journal of finished calls (what --resume continues)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run recorded in --journal (finished calls are not sent again)")
    p.add_argument("--system-prompts", metavar="FILE", help="task name -> system prompt (.json or .toml)")
    p.add_argument("--format", default="numbered", choices=("numbered", "json"),
                   help="batch prompt format (default numbered: Q1:/A1: lines)")
    # Checked by argparse, so that an error names the flag (it named run()'s `timeout_s`).
    from ..cli import _int_at_least, _positive_float

    p.add_argument("--max-concurrency", type=_int_at_least(1), default=8, metavar="N",
                   help="requests in flight (default 8)")
    p.add_argument("--retries", type=_int_at_least(0), default=3, metavar="N", help="retries per call (default 3)")
    p.add_argument("--timeout", type=_positive_float, default=60.0, metavar="S",
                   help="per request, seconds (default 60)")
    p.add_argument("--answers-out", metavar="FILE.jsonl", help="write one line per query: answer or failure")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _lines(text: str) -> list[str]:
    """The file's lines: split at ``\n`` only (``\r\n`` too). ``str.splitlines`` also splits at
    form feeds, ``\x1c``-``\x1e``, ``\x85`` and U+2028/U+2029, which may stand inside a
    question (or a JSON string): the questions then shifted onto the wrong queries."""
    if text.endswith("\n"):
        text = text[:-1]
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")] if text else []


def read_questions(path: str) -> list[str]:
    """Questions from a .txt, .json or .jsonl file; errors name the file and the line.

    Parameters
    ----------
    path : str
        ``.txt``: one question per line (lines end at ``\n`` only; one blank last line is
        ignored). ``.json``: a list of strings. ``.jsonl``/``.ndjson``: per line a string or
        an object with a ``question`` key (blank lines skipped).

    Returns
    -------
    list of str

    Raises
    ------
    ServeConfigError
        The file is missing or unreadable, not of its suffix's format, or holds a question
        that is not a non-empty string; the message begins ``file:line:`` where a line is at
        fault.
    """
    p = Path(path)
    try:
        # Bytes, then text: read_text translates a lone \r into a line end, which split a
        # question in two (lines end at \n only).
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ServeConfigError("questions", "file not found", source=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeConfigError("questions", f"cannot read: {exc}", source=path) from None
    suffix = p.suffix.lower()
    line_of = None                                 # question index -> 1-based line of the file
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ServeConfigError("questions", f"not valid JSON: {exc}", source=path) from None
        if not isinstance(data, list):
            raise ServeConfigError("questions", "must be a JSON list of strings", source=path)
        out = data
    elif suffix in (".jsonl", ".ndjson"):
        out, lines = [], []
        for ln, line in enumerate(_lines(text), 1):
            if not line.strip():
                continue
            try:
                v = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ServeConfigError(f"line {ln}", f"not valid JSON: {exc}", source=path) from None
            if isinstance(v, dict):
                if "question" not in v:
                    raise ServeConfigError(f"line {ln}", "an object needs a `question` key", source=path)
                v = v["question"]
            out.append(v)
            lines.append(ln)
        line_of = lines.__getitem__
    elif suffix in (".txt", ""):
        out = _lines(text)
        if out and not out[-1].strip():
            out = out[:-1]
        line_of = (lambda i: i + 1)
    else:
        raise ServeConfigError("questions", f"unknown suffix {suffix!r}: use .txt, .json or .jsonl", source=path)
    for i, q in enumerate(out):
        if not isinstance(q, str) or not q.strip():
            raise ServeConfigError(f"questions[{i}]", f"must be a non-empty string, got {q!r}",
                                   source=path if line_of is None else f"{path}:{line_of(i)}")
    return out


def read_system_prompts(path: str) -> dict[str, str]:
    """Task name -> system prompt from a .json or .toml file.

    Parameters
    ----------
    path : str
        ``.toml`` (``task = "prompt"`` lines) or JSON (``{"task": "prompt"}``).

    Returns
    -------
    dict of str to str

    Raises
    ------
    ServeConfigError
        The file is missing, unreadable or malformed, or a value is not a string; the
        message names the file.
    """
    from .endpoints import tomllib

    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ServeConfigError("system_prompts", "file not found", source=path) from None
    except OSError as exc:
        raise ServeConfigError("system_prompts", f"cannot read: {exc.strerror or exc}", source=path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig")) if p.suffix.lower() == ".toml" \
            else json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:         # JSON and TOML decode errors are ValueErrors
        raise ServeConfigError("system_prompts", f"cannot parse: {exc}", source=path) from None
    if not isinstance(data, dict):
        raise ServeConfigError("system_prompts", "must map task names to strings", source=path)
    for task, text in data.items():
        if not isinstance(text, str):
            raise ServeConfigError(f"system_prompts[{task!r}]", f"must be a string, got {type(text).__name__}",
                                   source=path)
    return data


class _ProgressLine:
    """``calls 12/40  answers 44  failures 0  $0.000123`` on stderr, only on a terminal."""

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.shown = False

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        self.shown = True
        self.stream.write(f"\rserve: calls {p.calls_done}/{p.calls_total}  answers {p.answers}  "
                          f"failures {p.failures}  ${p.cost_usd:,.6f}  {time.perf_counter() - self.t0:6.1f} s ")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def serve_command(args, inst, plan) -> int:
    """Run ``robatch-opt serve`` on a loaded instance and plan; returns the exit status."""
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise ServeConfigError("serve", "needs httpx: pip install 'robatch_opt[serve]'") from None
    from .endpoints import check_keys, load_endpoints
    from .executor import _validate, run

    questions = read_questions(args.questions)
    if len(questions) != inst.n_queries:                  # here, where the file can be named
        raise ServeConfigError("questions", f"must hold one question per query ({inst.n_queries:,}), got "
                                            f"{len(questions):,}", source=args.questions)
    prompts = read_system_prompts(args.system_prompts) if args.system_prompts else None
    try:
        _validate(plan, inst, questions, prompts)     # a plan of another instance is named as such first
    except ServeConfigError as exc:
        if exc.source is None and exc.field.startswith("system_prompts") and args.system_prompts:
            raise ServeConfigError(exc.field, exc.detail, source=args.system_prompts) from None
        raise
    used = sorted({plan.model_names[int(k)] for k in set(plan.model.tolist())})
    endpoints = load_endpoints(args.endpoints, model_names=used)
    check_keys({m: endpoints[m] for m in used}, source=args.endpoints)
    journal = Path(args.journal)
    inputs = [p for p in (args.instance, args.plan, args.questions, args.endpoints, args.system_prompts) if p]
    if not args.journal.strip():
        raise ServeConfigError("journal", "is empty; pass a file name (e.g. run.jsonl)")
    if journal.is_dir():
        raise ServeConfigError("journal", "is a folder; pass a file name", source=args.journal)
    if not journal.resolve().parent.is_dir():
        raise ServeConfigError("journal", "its directory does not exist", source=args.journal)
    if any(journal.resolve() == Path(p).resolve() for p in inputs):
        raise ServeConfigError("journal", "is one of the command's input files", source=args.journal)
    if args.resume and not (journal.exists() and journal.stat().st_size > 0):
        # A typo in the journal's name would start a fresh run and pay for every call again.
        raise ServeConfigError("journal", "does not exist or is empty: nothing to resume (drop --resume to start "
                                          "a new run)", source=args.journal)
    if journal.exists() and journal.stat().st_size > 0 and not args.resume:
        raise ServeConfigError("journal", "exists: pass --resume to continue that run, or choose a new file",
                               source=args.journal)
    if args.answers_out is not None:
        # Before any request is sent (and paid for): a folder, a missing directory or one of
        # the inputs (the questions file was overwritten with the answers) is refused here.
        check_output_path(args.answers_out, inputs=inputs + [args.journal], what="--answers-out")
    bar = None if args.json else _ProgressLine()
    try:
        res = run(plan, inst, questions, endpoints, system_prompts=prompts, journal=journal,
                  max_concurrency=args.max_concurrency, retries=args.retries, timeout_s=args.timeout,
                  format=args.format, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.answers_out is not None:
        with open_atomic(args.answers_out, "w", encoding="utf-8") as fh:      # whole or not at all
            for i, a in enumerate(res.answers):
                row = {"query": i, "answer": a}
                if i in res.failures:
                    f = res.failures[i]
                    row.update({"failure": f.reason, "attempts": f.attempts, "call": f.call_key})
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if args.json:
        d = res.summary_dict()
        d.update({"journal": str(journal), "answers_out": args.answers_out})
        print(json.dumps(d))
    else:
        print(res.summary())
        print(f"journal         {journal}")
    # A script must see that queries went unanswered (it saw 0 with every call failed);
    # `--resume` re-sends the calls that failed.
    return 0 if not res.failures else 1
