"""The run journal: an append-only JSON Lines file, one line per finished call.

Line 1 is a header naming the run (a fingerprint of the plan's calls, the questions, the
system prompts, the format, ``ask_alone`` and each endpoint's served model and api, and one
fingerprint per part, so that a refusal names what differs); every further line is one
finished call
(:meth:`CallRecord.to_dict`), written, flushed and fsynced before anything depends on it
(records finishing together share one fsync). A run
killed at any moment therefore leaves whole lines plus at most one torn last line, which
opening a :class:`Journal` cuts off. Resuming reads the finished calls back, and they are never
sent again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from .errors import JournalError
from .result import CallRecord

__all__ = ["Journal", "JOURNAL_FORMAT", "fingerprint", "read_journal"]

JOURNAL_FORMAT = "robatch_opt.serve.journal/1"


def fingerprint(parts: Iterable) -> str:
    """SHA-256 of the JSON text of ``parts`` (what identifies a run)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _read_lines(path: Path) -> tuple[list[dict], int]:
    """Whole JSON lines of the file and the byte length they span (a torn tail excluded)."""
    data = path.read_bytes()
    out, good_end, pos = [], 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break                         # torn last line (killed mid-write): not finished
        line = data[pos:nl]
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise JournalError(f"{path}: line {len(out) + 1} is not JSON ({exc}); the journal is corrupt") from None
        if not isinstance(obj, dict):
            raise JournalError(f"{path}: line {len(out) + 1} is not a JSON object")
        out.append(obj)
        pos = good_end = nl + 1
    return out, good_end


def _header_start() -> bytes:
    """How every header line begins (:meth:`Journal._line` of the header dict)."""
    return json.dumps({"kind": "header", "format": JOURNAL_FORMAT}, ensure_ascii=False).encode("utf-8")[:-1]


def _torn_header(path: Path) -> bool:
    """Whether ``path`` (a file without a whole line) can hold a header line cut short; reads
    only as many bytes as a header's start (the file may be a large one-line foreign file)."""
    start = _header_start()
    with open(path, "rb") as fh:
        head = fh.read(len(start))
    return head == start if len(head) == len(start) else start.startswith(head)


#: What each part of a run's fingerprint stands for, as a refusal names it.
PART_NAMES = {"calls": "the plan's calls", "questions": "the questions", "system_prompts": "the system prompts",
              "format": "the batch format", "ask_alone": "the ask_alone setting",
              "endpoints": "the endpoints' served model or api"}


def _what_differs(old: dict, new: dict | None) -> str:
    """The parts of a run that differ between a journal's header and this run's, in words."""
    a, b = old.get("parts"), (new or {}).get("parts")
    if isinstance(a, dict) and isinstance(b, dict):
        differ = [PART_NAMES.get(k, k) for k in b if a.get(k) != b[k]]
        if differ:
            return "other " + ", ".join(d.removeprefix("the ") for d in differ)
    return "other plan, questions, system prompts, format, ask_alone or endpoints' served model or api"


def _records(path: Path, lines: list[dict]) -> list[CallRecord]:
    """The call records of a journal's lines (after the header); JournalError naming the line
    and the field of the first bad one."""
    out = []
    for number, d in enumerate(lines[1:], start=2):
        try:
            out.append(CallRecord.from_dict(d))
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"{path}: line {number}: {exc}; the journal is corrupt") from None
    return out


def read_journal(path) -> tuple[dict, list[CallRecord]]:
    """Header and finished calls of a journal file (for inspection; :class:`Journal` resumes).

    The file is only read: a torn last line (a run killed mid-write) is ignored, not cut off.

    Parameters
    ----------
    path : str or path
        The journal file.

    Returns
    -------
    header : dict
        The first line: ``kind``, ``format``, ``fingerprint`` and the run's extra fields
        (``n_queries``, ``n_calls`` and ``parts``, the fingerprint of each part of the run,
        for a journal of :func:`run`).
    records : list of CallRecord
        Every call line in file order; a call sent again by a resumed run has one record per
        run (the newest last).

    Raises
    ------
    JournalError
        The file holds no whole line, its first line is not a robatch_opt serve journal
        header, or a whole line is not a JSON object or not a valid call record.
    OSError
        The file cannot be read (``FileNotFoundError`` when it does not exist).
    """
    path = Path(path)
    lines, _ = _read_lines(path)
    if not lines or lines[0].get("format") != JOURNAL_FORMAT:
        raise JournalError(f"{path}: not a robatch_opt serve journal (expected format {JOURNAL_FORMAT!r})")
    return lines[0], _records(path, lines)


class Journal:
    """An open journal: finished calls read back, new ones appended durably.

    Parameters
    ----------
    path : str or path
    run_fingerprint : str
        What this run is; an existing journal of another run is refused.
    header : dict
        Extra header fields written when the file is new. A ``"parts"`` entry (part name ->
        fingerprint of that part of the run) lets a refusal name what differs.
    fsync : bool
        fsync after every line (default). Without it a power loss may lose the last lines
        (a killed process loses nothing: the data is in the kernel).
    legacy_fingerprints : iterable of str
        What the same run's fingerprint was under an earlier definition: a journal whose
        header has one of these (and no ``"parts"``, so it predates them) is resumed too.

    Attributes
    ----------
    finished : dict of str to CallRecord
        Calls finished by earlier runs, by key: the newest record of each.
    history : dict of str to list of CallRecord
        Every record of each call that the file held when it was opened (the earlier runs),
        oldest first: a call that failed in one run and was sent again in the next has both,
        and both runs' attempts and spending stay accounted for. Records this run appends
        are not added.

    Raises
    ------
    JournalError
        ``path`` is a folder, or its directory does not exist or is not a directory; the file
        is not a robatch_opt serve journal (a header torn by a kill is accepted and written
        again), belongs to another run (its fingerprint differs), or has a corrupt line.
    """

    def __init__(self, path, run_fingerprint: str, header: dict | None = None, *, fsync: bool = True,
                 legacy_fingerprints: Iterable[str] = ()):
        if not str(os.fspath(path)).strip():            # Path("") is ".", a folder
            raise JournalError("`journal`: is empty; pass a file name (e.g. run.jsonl)")
        self.path = Path(path)
        if self.path.is_dir():
            raise JournalError(f"{self.path}: the journal is a folder; pass a file name")
        if not self.path.parent.is_dir():
            raise JournalError(f"{self.path}: the journal's directory {self.path.parent} does not exist"
                               if not self.path.parent.exists() else
                               f"{self.path}: {self.path.parent} is not a directory")
        self.fsync = fsync
        self.finished: dict[str, CallRecord] = {}
        self.history: dict[str, list[CallRecord]] = {}
        self._queue: list = []
        self._draining = False
        if self.path.exists() and self.path.stat().st_size > 0:
            lines, good_end = _read_lines(self.path)
            if not lines:
                # No whole line: a header torn by a kill is cut off and written again; any
                # other one-line file (notes without a final newline, a plan) is not ours.
                if not _torn_header(self.path):
                    raise JournalError(f"{self.path}: not a robatch_opt serve journal "
                                       f"(expected format {JOURNAL_FORMAT!r}); use a new journal file")
                hdr = None
            else:
                hdr = lines[0]
                if hdr.get("format") != JOURNAL_FORMAT:
                    raise JournalError(f"{self.path}: not a robatch_opt serve journal "
                                       f"(expected format {JOURNAL_FORMAT!r})")
                legacy = "parts" not in hdr and hdr.get("fingerprint") in set(legacy_fingerprints)
                if hdr.get("fingerprint") != run_fingerprint and not legacy:
                    raise JournalError(f"{self.path}: the journal belongs to another run "
                                       f"({_what_differs(hdr, header)}); use a new journal file")
            for rec in _records(self.path, lines):
                self.finished[rec.key] = rec
                self.history.setdefault(rec.key, []).append(rec)
            if good_end < self.path.stat().st_size:
                os.truncate(self.path, good_end)       # drop the torn tail before appending
            self._fh = self._open()
            if hdr is None:
                self._write({"kind": "header", "format": JOURNAL_FORMAT, "fingerprint": run_fingerprint,
                             **(header or {})})
        else:
            self._fh = self._open()
            self._write({"kind": "header", "format": JOURNAL_FORMAT, "fingerprint": run_fingerprint,
                         **(header or {})})

    def _open(self):
        try:
            return open(self.path, "ab")
        except OSError as exc:                 # the OS's words alone named no journal
            raise JournalError(f"{self.path}: cannot write the journal: {exc.strerror or exc}") from None

    @staticmethod
    def _line(obj: dict) -> bytes:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"

    def _write_bytes(self, data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def _write(self, obj: dict) -> None:
        self._write_bytes(self._line(obj))

    def append(self, record: CallRecord) -> None:
        """Write one finished call (a whole line, flushed and fsynced).

        The record is added to :attr:`finished` once it is written, not to :attr:`history`.

        Parameters
        ----------
        record : CallRecord
            The finished call; written as :meth:`CallRecord.to_dict`.

        Raises
        ------
        ValueError
            A float of ``record`` is NaN or infinite (JSON has no such number); nothing is
            written. Also when the journal is closed.
        OSError
            The write, flush or fsync failed.
        """
        self._write(record.to_dict())
        self.finished[record.key] = record

    async def append_async(self, record: CallRecord) -> None:
        """:meth:`append` from a coroutine: returns once the line is durable.

        The write and fsync run in a worker thread, so other calls go on meanwhile, and the
        records that finish while one fsync runs are written together by the next (group
        commit: one fsync for many calls when many are in flight).

        Parameters
        ----------
        record : CallRecord
            The finished call; written as :meth:`CallRecord.to_dict`, added to
            :attr:`finished` once durable. Its floats must be finite (JSON has no NaN).

        Raises
        ------
        OSError
            The write, flush or fsync failed; raised to every caller whose record was in
            that write.
        ValueError
            The record holds a float that is not finite (at once, nothing written), or the
            journal is closed.
        """
        # Serialised here, so that a record JSON cannot hold fails its own caller at once: in
        # the drainer it failed outside the write's error handling and every waiter hung.
        line = self._line(record.to_dict())
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((record, line, fut))
        if not self._draining:
            self._draining = True
            self._drainer = asyncio.ensure_future(self._drain())
        await fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                data = b"".join(line for _, line, _ in batch)
                try:
                    await asyncio.to_thread(self._write_bytes, data)
                except BaseException as exc:
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    raise
                for rec, _, fut in batch:
                    self.finished[rec.key] = rec
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._draining = False

    async def aclose(self) -> None:
        """Wait for lines being written (also when the run is being cancelled), then close."""
        drainer = getattr(self, "_drainer", None)
        if drainer is not None and not drainer.done():
            try:
                await asyncio.shield(drainer)
            except BaseException:        # a failed write was already raised to its caller
                pass
        self.close()

    def close(self) -> None:
        """Close the file (again: a no-op).

        Every line written so far was already flushed (and fsynced unless ``fsync=False``), so
        closing loses nothing. Lines still queued by :meth:`append_async` are not waited for:
        from a coroutine, use :meth:`aclose`.
        """
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
