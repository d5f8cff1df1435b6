"""Batch prompt formats: one call's request from a system prompt and ``b`` questions, and the
reply back into ``b`` answers.

A format is a small object with four methods (:class:`BatchFormat`); users can pass their own.
Two are built in:

- :class:`NumberedFormat` (the default): questions ``Q1: ...``, ``Q2: ...`` in call order; the
  model is asked for one line per answer, ``A1: <answer>``, ``A2: <answer>``, ...
- :class:`JsonArrayFormat`: the model is asked for a JSON array
  ``[{"id": 1, "answer": "..."}, ...]``.

Parsing is conservative: an answer is attributed to a question only when its label (or JSON
``id``, or its position in a complete array) says so unambiguously. Anything else is ``None``,
and the executor asks that question again alone. Wrong attribution is the one error that
cannot be repaired later, so ambiguity (two different answers labelled with the same number,
a plain JSON array of the wrong length) always yields ``None``.
"""

from __future__ import annotations

import abc

import json
import re
from typing import Sequence

__all__ = ["BatchFormat", "NumberedFormat", "JsonArrayFormat", "FORMATS", "get_format", "contains_label"]


def _instructions_for(instructions: str, n: int) -> str:
    """The instructions for ``n`` questions ("Answer each of the 1 questions" read badly)."""
    text = instructions
    if n == 1:
        for many, one in (("each of the {n} questions", "the question"), ("{n} questions", "1 question"),
                          ("{n} objects", "1 object")):
            text = text.replace(many, one)
    return text.replace("{n}", str(n)).strip()


class BatchFormat(abc.ABC):
    """Interface of a batch prompt format (subclass it, or duck-type the four methods).

    Attributes
    ----------
    name : str
        Short name (``--format`` of the CLI).
    """

    name = "base"

    @abc.abstractmethod
    def messages(self, system_prompt: str, questions: Sequence[str]) -> list[dict]:
        """Chat messages (``/v1/chat/completions``) asking ``questions`` in one call.

        Parameters
        ----------
        system_prompt : str
            The task's system prompt (instructions, few-shot examples); may be empty.
        questions : sequence of str
            The call's questions, in the order their answers must come back.

        Returns
        -------
        list of dict
            OpenAI chat messages (``{"role": ..., "content": ...}``), sent as the request's
            ``messages``.
        """

    @abc.abstractmethod
    def prompt(self, system_prompt: str, questions: Sequence[str]) -> tuple[str, str]:
        """Completion prompt (``/v1/completions``) and the reply prefix it ends with.

        Parameters
        ----------
        system_prompt : str
            The task's system prompt (instructions, few-shot examples); may be empty.
        questions : sequence of str
            The call's questions, in the order their answers must come back.

        Returns
        -------
        prompt : str
            The text sent.
        prefix : str
            The start of the reply already written at the end of ``prompt`` (e.g. ``"A1:"``):
            :meth:`parse` receives ``prefix + completion``.
        """

    def stop(self, n_questions: int) -> list[str]:
        """Stop sequences for a completion endpoint (may be empty).

        Parameters
        ----------
        n_questions : int
            Questions in the call.

        Returns
        -------
        list of str
            Sent as the request's ``stop`` (completion endpoints only; an empty list sends
            none). This default returns ``[]``.
        """
        return []

    @abc.abstractmethod
    def parse(self, reply: str, n_questions: int, *, truncated: bool = False) -> list[str | None]:
        """Split a reply into ``n_questions`` answers (``None`` where there is none).

        Parameters
        ----------
        reply : str
            The reply text; for a completion, the ``prefix`` of :meth:`prompt` followed by the
            completion.
        n_questions : int
            Questions asked in the call.
        truncated : bool
            The reply was cut off (``finish_reason == "length"``): its last, unfinished item
            is not trusted.

        Returns
        -------
        list of (str or None)
            Exactly ``n_questions`` items, the i-th the answer to the i-th question; None
            where the reply holds no answer that can be attributed (that question is asked
            again alone). A list of another length stops the run with a
            :class:`ServeConfigError`.
        """


# ---------------------------------------------------------------------- numbered format
# A label: Q3 / A3 then ':' '.' or ')' (also "**A3**:"), or Question 3 / Answer 3 then ':'
# (a '.' after the long forms is too common in prose: "my answer 5."). It must start the
# text or follow whitespace or markdown, so "BA1:" inside a word is not a label. The regex
# starts with a literal character class (which the regex engine scans for quickly); the
# character before and the long form's word are checked in Python on the few candidates.
_CANDIDATE = re.compile(r"[QqAa](?:(?i:uestion|nswer)\s*(\d{1,4})\s*:|\s*(\d{1,4})(?:\*\*)?\s*[:.)])")
_BEFORE = frozenset("*_`#>|([-")


def _labels(text: str) -> list[tuple[int, int, str, int]]:
    """``(start, end, "a" or "q", number)`` of every label in ``text``, in order."""
    out = []
    for m in _CANDIDATE.finditer(text):
        st = m.start()
        if st:
            c = text[st - 1]
            if c not in _BEFORE and not c.isspace():
                continue
        kind = "a" if text[st] in "Aa" else "q"
        num = m.group(2)
        if num is None:                                  # long form: the whole word must match
            if not text[st:st + 8].lower().startswith("question" if kind == "q" else "answer"):
                continue
            num = m.group(1)
        out.append((st, m.end(), kind, int(num)))
    return out


def contains_label(text: str) -> bool:
    """True if ``text`` holds something the numbered parser reads as a label (``A3:``...)."""
    return bool(_labels(" " + text))


# Fallback for replies without A-labels: "1. x", "2) x" at the start of a line.
_BARE = re.compile(r"^[ \t>*_`#-]*(\d{1,4})\s*[.):]\s+(.*)$", re.MULTILINE)
_EDGE = " \t\r\n*_`\"'"


def _clean(text: str) -> str:
    """An answer without surrounding whitespace, markdown emphasis or quotes."""
    return text.strip(_EDGE)


#: The built-in instructions' placeholders (``A1: <answer>``, ``"answer": "..."``): a model
#: that echoes the template has answered nothing (Gemma 3 270M replied ``A1: <answer>`` to
#: every question of a batch, which was recorded as eight answers).
PLACEHOLDERS = frozenset({"<answer>", "...", "\u2026"})


def _real(text: str | None) -> str | None:
    """``text``, or None when it is empty or a placeholder."""
    return None if not text or text.strip().lower() in PLACEHOLDERS else text


def _attribute(found: list[tuple[int, str]], n: int) -> list[str | None]:
    """Answers by number; a number given two different answers is ambiguous, hence None; an
    echoed placeholder is no answer."""
    out: list[str | None] = [None] * n
    conflict = [False] * n
    for num, text in found:
        i = num - 1
        if not 0 <= i < n or _real(text) is None:
            continue
        if out[i] is None and not conflict[i]:
            out[i] = text
        elif out[i] != text:
            out[i], conflict[i] = None, True
    return out


class NumberedFormat(BatchFormat):
    """``Q1: ...`` questions, ``A1: <answer>`` lines (the default format).

    Parameters
    ----------
    instructions : str
        Sentence placed before the system prompt (so that a base model's few-shot examples
        come right before the questions). ``{n}`` is replaced by the number of questions.
    unlabeled_single : bool
        With one question and no label anywhere in the reply, take its first non-empty line
        as the answer (chat models often answer a lone question bare). False: such a reply
        is no answer, so nothing that is not labelled is ever taken.

    Notes
    -----
    The parser accepts labels ``A3:``, ``A3.``, ``A3)``, ``Answer 3:``, any case, in markdown
    (``**A3:** x``, ``- A3: x``), several on one line, in any order, and questions echoed as
    ``Q3: ...`` (ignored). An answer runs to the end of its line or to the next label.
    Without any ``A`` label it falls back to bare numbered lines (``3. x``); with one question
    and no label at all, the first non-empty line is the answer (see ``unlabeled_single``).
    An answer that is the instructions' placeholder (``<answer>``, see :data:`PLACEHOLDERS`)
    is no answer. O(length of the reply).

    Examples
    --------
    >>> fmt = NumberedFormat()
    >>> fmt.parse("A2: Paris\\n**A1:** Rome\\nA3: Lon", 3, truncated=True)
    ['Rome', 'Paris', None]
    """

    name = "numbered"

    def __init__(self, instructions: str = ("Answer each of the {n} questions. Reply with one line per "
                                            "question, in order, as A1: <answer>, A2: <answer>, ... "
                                            "and nothing else."), *, unlabeled_single: bool = True):
        self.instructions = instructions
        self.unlabeled_single = unlabeled_single

    def _body(self, questions: Sequence[str]) -> str:
        return "\n".join(f"Q{j}: {' '.join(str(q).split())}" for j, q in enumerate(questions, 1))

    def _head(self, system_prompt: str, n: int) -> str:
        parts = [p for p in (_instructions_for(self.instructions, n), system_prompt.strip()) if p]
        return "\n\n".join(parts)

    def messages(self, system_prompt, questions):
        """Chat messages: the instructions and the system prompt, then the questions.

        Parameters
        ----------
        system_prompt : str
            The task's system prompt, placed after the instructions; may be empty.
        questions : sequence of str
            One ``Q<j>: ...`` line each, numbered from 1; a question's line breaks and runs of
            whitespace become single spaces, so that it stays on its own line.

        Returns
        -------
        list of dict
            A ``system`` message (the instructions for ``len(questions)`` questions, a blank
            line, the system prompt; left out when both are empty), then a ``user`` message
            holding the ``Q<j>:`` lines.
        """
        msgs = []
        head = self._head(system_prompt, len(questions))
        if head:
            msgs.append({"role": "system", "content": head})
        msgs.append({"role": "user", "content": self._body(questions)})
        return msgs

    def prompt(self, system_prompt, questions):
        """Completion prompt: the text of :meth:`messages` in one piece, ending with ``A1:``.

        Parameters
        ----------
        system_prompt : str
            The task's system prompt, placed after the instructions; may be empty.
        questions : sequence of str
            One ``Q<j>: ...`` line each, as in :meth:`messages`.

        Returns
        -------
        prompt : str
            The system message's text and a blank line (when there is one), the ``Q<j>:``
            lines, then ``"\\nA1:"``: the model only has to continue the first answer.
        prefix : str
            ``"A1:"``.
        """
        head = self._head(system_prompt, len(questions))
        text = (head + "\n\n" if head else "") + self._body(questions) + "\nA1:"
        return text, "A1:"

    def stop(self, n_questions):
        """Stop sequences: a blank line, a new question, or a label past the last question.

        Parameters
        ----------
        n_questions : int
            Questions in the call.

        Returns
        -------
        list of str
            ``["\\n\\n", "\\nQ", "A<n_questions + 1>:"]``.
        """
        # A base model continues the few-shot pattern: a blank line or a new question ends
        # the answers; a label past the last question means it is inventing more.
        return ["\n\n", "\nQ", f"A{n_questions + 1}:"]

    def parse(self, reply, n_questions, *, truncated=False):
        """Split a reply into ``n_questions`` answers by their labels (see the class's Notes).

        Parameters
        ----------
        reply : str
            The reply text (for a completion, ``"A1:"`` followed by the completion); anything
            but a str is read as an empty reply.
        n_questions : int
            Questions asked in the call.
        truncated : bool
            The reply was cut off: unless it ends with a newline its last line is dropped, as
            an answer on it may be incomplete.

        Returns
        -------
        list of (str or None)
            ``n_questions`` answers in question order; None where the reply has no answer,
            two different answers, or only the placeholder for a question.
        """
        n = int(n_questions)
        text = reply if isinstance(reply, str) else ""
        if truncated and not text.endswith("\n"):
            # The last line was cut off: drop it (an answer on it may be incomplete).
            cut = text.rfind("\n")
            text = text[:cut + 1] if cut >= 0 else ""
        labels = _labels(text)
        found: list[tuple[int, str]] = []
        for pos, (st, en, kind, num) in enumerate(labels):
            if kind != "a":
                continue
            end = labels[pos + 1][0] if pos + 1 < len(labels) else len(text)
            nl = text.find("\n", en, end)
            found.append((num, _clean(text[en:end if nl < 0 else nl])))
        if found:
            return _attribute(found, n)
        if labels:
            # Questions echoed but no answer label: bare numbers could be the questions' own.
            return [None] * n
        bare = [(int(m.group(1)), _clean(m.group(2))) for m in _BARE.finditer(text)]
        if bare:
            return _attribute(bare, n)
        if n == 1 and self.unlabeled_single:
            first = next((_clean(line) for line in text.splitlines() if _clean(line)), "")
            return [_real(first)]
        return [None] * n


# ------------------------------------------------------------------------ JSON format
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


def _json_items(text: str) -> tuple[list, bool]:
    """Complete items of the first JSON array in ``text``, and whether the array was closed."""
    start = text.find("[")
    if start < 0:
        return [], False
    dec = json.JSONDecoder()
    items, i, n = [], start + 1, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            break
        if text[i] == "]":
            return items, True
        try:
            value, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break                        # cut off (or garbage) inside an item: stop there
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            j = i
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j >= n or text[j] not in ",]":
                break                    # a number may be cut: "12" of "123", "1." of "1.5", "12e" of "12e3"
        items.append(value)
    return items, False


def _as_text(value) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _clean(str(value)) or None


class JsonArrayFormat(BatchFormat):
    """Questions as a JSON array; answers as ``[{"id": 1, "answer": "..."}, ...]``.

    The parser reads the first JSON array of the reply (inside a code fence or not). Items
    with an ``id`` are placed by it; a plain array of strings is placed by position only when
    it has exactly one item per question (or, cut off, for the complete items before the
    cut, when there are no more of them than questions). A reply cut off inside the array
    keeps its complete items. An answer that is the instructions' placeholder (``...``) is
    no answer.

    Parameters
    ----------
    instructions : str
        Sentence placed before the system prompt. ``{n}`` is replaced by the number of
        questions (with one question, "each of the {n} questions" becomes "the question" and
        "{n} objects" "1 object").

    Examples
    --------
    >>> JsonArrayFormat().parse('```json\\n[{"id": 2, "answer": "Paris"}, {"id": 1, "answer": 7}]\\n```', 3)
    ['7', 'Paris', None]
    """

    name = "json"

    def __init__(self, instructions: str = ('Answer each of the {n} questions. Reply with only a JSON array '
                                            'of {n} objects, in order: [{"id": 1, "answer": "..."}, ...].')):
        self.instructions = instructions

    def _body(self, questions):
        return json.dumps([{"id": j, "question": str(q)} for j, q in enumerate(questions, 1)],
                          ensure_ascii=False)

    def _head(self, system_prompt, n):
        parts = [p for p in (_instructions_for(self.instructions, n), system_prompt.strip()) if p]
        return "\n\n".join(parts)

    def messages(self, system_prompt, questions):
        """Chat messages: the instructions and the system prompt, then the questions as JSON.

        Parameters
        ----------
        system_prompt : str
            The task's system prompt, placed after the instructions; may be empty.
        questions : sequence of str
            Written as ``[{"id": 1, "question": "..."}, ...]``, ids from 1 in order.

        Returns
        -------
        list of dict
            A ``system`` message (the instructions for ``len(questions)`` questions, a blank
            line, the system prompt; left out when both are empty), then a ``user`` message
            holding the JSON array of the questions (non-ASCII text kept as is).
        """
        msgs = []
        head = self._head(system_prompt, len(questions))
        if head:
            msgs.append({"role": "system", "content": head})
        msgs.append({"role": "user", "content": self._body(questions)})
        return msgs

    def prompt(self, system_prompt, questions):
        """Completion prompt: the text of :meth:`messages` in one piece, ending with ``Answers: [``.

        Parameters
        ----------
        system_prompt : str
            The task's system prompt, placed after the instructions; may be empty.
        questions : sequence of str
            Written as a JSON array, as in :meth:`messages`.

        Returns
        -------
        prompt : str
            The system message's text and a blank line (when there is one), ``"Questions: "``
            and the JSON array, then ``"\\nAnswers: ["``: the model only has to continue
            the array.
        prefix : str
            ``"["``.
        """
        head = self._head(system_prompt, len(questions))
        text = (head + "\n\n" if head else "") + "Questions: " + self._body(questions) + "\nAnswers: ["
        return text, "["

    def stop(self, n_questions):
        """Stop sequence: the completion ends at its first blank line.

        Parameters
        ----------
        n_questions : int
            Questions in the call; not used (the stop does not depend on it).

        Returns
        -------
        list of str
            ``["\\n\\n"]``.
        """
        return ["\n\n"]

    def parse(self, reply, n_questions, *, truncated=False):
        """Split a reply into ``n_questions`` answers from its first JSON array (see the class).

        Parameters
        ----------
        reply : str
            The reply text (for a completion, ``"["`` followed by the completion); code
            fences are removed first; anything but a str is read as an empty reply.
        n_questions : int
            Questions asked in the call.
        truncated : bool
            Not used: only items that decode as whole JSON values are read, cut off or not;
            a number that no ``,`` or ``]`` follows is not read (``[1, 2, 12`` may be
            ``[1, 2, 123]`` cut short, ``[1, 2, 1.`` a cut ``1.5``).

        Returns
        -------
        list of (str or None)
            ``n_questions`` answers in question order, as text (``7.0`` as ``"7"``, booleans
            as ``"true"`` / ``"false"``); None where there is none, where two items give
            different answers for one id, where the answer is null, an object, an array or
            the placeholder, and for all when the array mixes objects and plain values or
            (plain values) cannot be placed by position.
        """
        n = int(n_questions)
        text = _FENCE.sub("", reply if isinstance(reply, str) else "")
        items, closed = _json_items(text)
        out: list[str | None] = [None] * n
        if not items:
            return out
        if all(isinstance(it, dict) for it in items):
            found = []
            for it in items:
                num = it.get("id")
                if isinstance(num, str) and num.strip().isdigit():
                    num = int(num)
                if isinstance(num, bool) or not isinstance(num, int):
                    continue
                ans = _as_text(it.get("answer"))
                if ans is not None:
                    found.append((num, ans))
            return _attribute(found, n)
        if any(isinstance(it, dict) for it in items):
            return out                  # a mix of objects and plain values: positions unclear
        if len(items) > n or (closed and len(items) != n):
            return out                  # which one is missing (or extra) is unknowable
        for i, it in enumerate(items[:n]):
            out[i] = _real(_as_text(it))
        return out


#: Built-in formats by name.
FORMATS = {"numbered": NumberedFormat, "json": JsonArrayFormat}


def get_format(fmt) -> BatchFormat:
    """A format object from a name (``"numbered"``, ``"json"``), a format, or None (default).

    Parameters
    ----------
    fmt : str, format object or None
        None: a new :class:`NumberedFormat`. A name of :data:`FORMATS`: a new instance of
        that class with its default instructions. Any other object is returned as is if it
        has callable ``messages``, ``prompt``, ``stop`` and ``parse`` (it need not subclass
        :class:`BatchFormat`). A class (not an instance) is refused.

    Returns
    -------
    BatchFormat
        Or the duck-typed object given.

    Raises
    ------
    ServeConfigError
        ``fmt`` is an unknown name, a class instead of an instance, or an object without one
        of the four methods.
    """
    from .errors import ServeConfigError

    if fmt is None:
        return NumberedFormat()
    if isinstance(fmt, str):
        if fmt not in FORMATS:
            raise ServeConfigError("format", f"unknown format {fmt!r}; known: {sorted(FORMATS)}")
        return FORMATS[fmt]()
    if isinstance(fmt, type):
        # Its methods are unbound functions: it passed the check below and failed at the first
        # call (after the journal was opened) with a TypeError about `self`.
        raise ServeConfigError("format", f"pass an instance, e.g. {fmt.__name__}(), not the class")
    for meth in ("messages", "prompt", "stop", "parse"):
        if not callable(getattr(fmt, meth, None)):
            raise ServeConfigError("format", f"a format needs a `{meth}` method; got {type(fmt).__name__}")
    return fmt
