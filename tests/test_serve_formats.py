"""Batch prompt formats: requests, and parsers under random corruptions (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from robatch_opt.serve import JsonArrayFormat, NumberedFormat, ServeConfigError, get_format
from robatch_opt.serve.formats import _EDGE, contains_label

NUM = NumberedFormat()
STRICT = NumberedFormat(unlabeled_single=False)      # takes nothing that is not labelled
JSN = JsonArrayFormat()


# ---------------------------------------------------------------------------- requests
def test_numbered_request_layout():
    msgs = NUM.messages("You are terse.", ["What is 2 + 2?", "Capital of\nItaly?"])
    assert msgs[0]["role"] == "system" and "You are terse." in msgs[0]["content"]
    assert "2 questions" in msgs[0]["content"]
    assert msgs[1] == {"role": "user", "content": "Q1: What is 2 + 2?\nQ2: Capital of Italy?"}
    prompt, prefix = NUM.prompt("Examples: ...", ["a?", "b?", "c?"])
    assert prompt.endswith("Q1: a?\nQ2: b?\nQ3: c?\nA1:") and prefix == "A1:"
    assert "A4:" in NUM.stop(3)


def test_json_request_round_trips_questions():
    msgs = JSN.messages("", ['say "hi"', "b"])
    assert json.loads(msgs[-1]["content"]) == [{"id": 1, "question": 'say "hi"'}, {"id": 2, "question": "b"}]


def test_get_format():
    assert isinstance(get_format(None), NumberedFormat)
    assert isinstance(get_format("json"), JsonArrayFormat)
    with pytest.raises(ServeConfigError, match="unknown format 'xml'"):
        get_format("xml")
    with pytest.raises(ServeConfigError, match="`messages` method"):
        get_format(object())


# ---------------------------------------------------------------------- numbered: cases
@pytest.mark.parametrize("reply, n, truncated, expected", [
    ("A1: Rome\nA2: Paris", 2, False, ["Rome", "Paris"]),
    ("A2: Paris\nA1: Rome", 2, False, ["Rome", "Paris"]),                       # out of order
    ("Sure! Here you go:\n\n**A1:** Rome\n- **A2**: Paris\n", 2, False, ["Rome", "Paris"]),   # markdown
    ("A1: Rome A2: Paris", 2, False, ["Rome", "Paris"]),                          # one line
    ("Q1: capital of Italy? A1: Rome\nQ2: of France?\nA2: Paris", 2, False, ["Rome", "Paris"]),
    ("A1: Rome\nA1: Rome\nA2: Paris", 2, False, ["Rome", "Paris"]),               # same repeat
    ("A1: Rome\nA1: Milan\nA2: Paris", 2, False, [None, "Paris"]),                # conflicting repeat
    ("A1: Rome\nA3: Berlin", 3, False, ["Rome", None, "Berlin"]),                 # missing item
    ("A1: Rome\nA2: Par", 2, True, ["Rome", None]),                               # cut off
    ("A1: Rome\nA2: Paris\n", 2, True, ["Rome", "Paris"]),                        # cut after a newline
    ("A1: Rome\nA7: Oslo", 2, False, ["Rome", None]),                             # beyond the batch
    ("Answer 1: Rome\nanswer 2: Paris", 2, False, ["Rome", "Paris"]),
    ("1. Rome\n2) Paris", 2, False, ["Rome", "Paris"]),                           # bare numbers
    ("Q1: 1. what\nQ2: 2. what", 2, False, [None, None]),                         # echo only
    ("I do not know.", 3, False, [None, None, None]),                             # garbage
    ("  Rome.\nmore text", 1, False, ["Rome."]),                                  # one question, no label
    ("A1: the answer 5. is wrong", 1, False, ["the answer 5. is wrong"]),         # prose "answer 5."
    ("", 2, False, [None, None]),
    ("A1: <answer>\nA2: <answer>", 2, False, [None, None]),                     # the template echoed
    ("A1: Rome\nA2: ...", 2, False, ["Rome", None]),
    ("<answer>", 1, False, [None]),
])
def test_numbered_parse_cases(reply, n, truncated, expected):
    assert NUM.parse(reply, n, truncated=truncated) == expected


@pytest.mark.parametrize("reply, n, truncated, expected", [
    ('[{"id": 1, "answer": "Rome"}, {"id": 2, "answer": "Paris"}]', 2, False, ["Rome", "Paris"]),
    ('Here:\n```json\n[{"id": 2, "answer": "Paris"}]\n```', 2, False, [None, "Paris"]),
    ('["Rome", "Paris"]', 2, False, ["Rome", "Paris"]),
    ('["Rome"]', 2, False, [None, None]),                        # which one is missing is unknown
    ('["Rome", "Par', 2, True, ["Rome", None]),                  # cut off: complete items kept
    ('[{"id": 1, "answer": "Rome"}, {"id": 2, "ans', 2, True, ["Rome", None]),
    ('[{"id": 1, "answer": "Rome"}, {"id": 1, "answer": "Milan"}]', 1, False, [None]),
    ('[{"id": 1, "answer": 42}, "x"]', 2, False, [None, None]),  # mixed: positions unclear
    ("no json here", 2, False, [None, None]),
    ('["a", "b", "c", "d", "e", "f"]', 4, True, [None] * 4),   # too many items, cut off or not
    ('[{"id": 1, "answer": "..."}, {"id": 2, "answer": "Paris"}]', 2, False, [None, "Paris"]),   # placeholder
])
def test_json_parse_cases(reply, n, truncated, expected):
    assert JSN.parse(reply, n, truncated=truncated) == expected


# ----------------------------------------------------------------- numbered: properties
def _is_answer(s: str) -> bool:
    """A valid answer of the format: one line, no label inside, nothing the parser trims."""
    return bool(s) and s == s.strip(_EDGE) and not contains_label(s)


answer_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1,
                      max_size=30).filter(_is_answer)
prose = st.text(st.characters(blacklist_characters="0123456789\n\r", blacklist_categories=("Cs", "Cc")),
                max_size=40).filter(lambda s: not contains_label(s))


@st.composite
def corrupted_reply(draw):
    """A well-formed reply of b answers, corrupted; returns (answers, reply, intact, truncated).

    ``intact[j]`` is True when answer j's line survives whole (an answer the parser must
    recover); every other answer may be recovered or not, but never misattributed.
    """
    b = draw(st.integers(1, 10))
    answers = draw(st.lists(answer_text, min_size=b, max_size=b))
    lines = [(j, f"A{j + 1}: {a}") for j, a in enumerate(answers)]
    keep = draw(st.lists(st.booleans(), min_size=b, max_size=b))              # missing items
    lines = [ln for ln, k in zip(lines, keep) if k]
    lines = draw(st.permutations(lines))                                      # out of order
    out = []
    for j, text in lines:
        style = draw(st.sampled_from(["plain", "bold", "bullet", "echo", "spaces"]))
        if style == "bold":
            text = f"**A{j + 1}:** {answers[j]}"
        elif style == "bullet":
            text = f"- {text}"
        elif style == "echo":                                                  # question echoed first
            text = f"Q{j + 1}: {draw(prose)} {text}"
        elif style == "spaces":
            text = f"  {text}   "
        out.append((j, text))
        if draw(st.integers(0, 4)) == 0:
            out.append((j, text))                                              # repeated number, same answer
        if draw(st.integers(0, 4)) == 0:
            out.append((None, draw(prose)))                                    # extra text
    if draw(st.booleans()):
        out.insert(0, (None, draw(prose)))                                     # preamble
    reply = "\n".join(t for _, t in out)
    intact = [False] * b
    for j, _ in out:
        if j is not None:
            intact[j] = True
    truncated = draw(st.booleans()) and len(reply) > 0
    if truncated:                                                              # cut off at max_tokens
        cut = draw(st.integers(0, len(reply)))
        reply = reply[:cut]
        # Only lines ending before the cut (with their newline) are whole.
        whole = reply[:reply.rfind("\n") + 1] if "\n" in reply else ""
        intact = [False] * b
        for j, t in out:
            if j is not None and f"{t}\n" in whole:
                intact[j] = True
    return answers, reply, intact, truncated


@settings(max_examples=250)
@given(corrupted_reply())
def test_numbered_parser_recovers_what_is_present_and_never_misattributes(case):
    answers, reply, intact, truncated = case
    parsed = STRICT.parse(reply, len(answers), truncated=truncated)
    if len(answers) > 1:
        assert NUM.parse(reply, len(answers), truncated=truncated) == parsed
    assert len(parsed) == len(answers)
    for j, (got, want) in enumerate(zip(parsed, answers)):
        assert got is None or got == want, f"answer {j} misattributed: {got!r} != {want!r}"
        if intact[j]:
            assert got == want, f"answer {j} present but not recovered"


@settings(max_examples=200)
@given(st.integers(1, 10).flatmap(lambda b: st.tuples(
    st.lists(answer_text, min_size=b, max_size=b), st.lists(st.booleans(), min_size=b, max_size=b),
    st.randoms(use_true_random=False), st.booleans(), st.integers(0, 10 ** 6))))
def test_json_parser_recovers_what_is_present_and_never_misattributes(case):
    answers, keep, rnd, with_ids, cut_at = case
    b = len(answers)
    if with_ids:
        items = [{"id": j + 1, "answer": a} for j, a in enumerate(answers) if keep[j]]
        rnd.shuffle(items)
    else:
        items = list(answers)                                                 # a plain array, in order
    body = json.dumps(items, ensure_ascii=False)
    reply = f"Here you are:\n```json\n{body}\n```"
    truncated = cut_at % 3 == 0
    if truncated:
        reply = reply[:cut_at % (len(reply) + 1)]
    parsed = JSN.parse(reply, b, truncated=truncated)
    for j, (got, want) in enumerate(zip(parsed, answers)):
        assert got is None or got == want.strip(_EDGE), f"answer {j} misattributed"
    if not truncated and with_ids:
        assert [p is not None for p in parsed] == [k and bool(a.strip(_EDGE)) for k, a in zip(keep, answers)]
    if not truncated and not with_ids:
        assert parsed == [a.strip(_EDGE) or None for a in answers]


def test_strict_numbered_takes_nothing_unlabelled():
    assert STRICT.parse("Rome", 1) == [None]
    assert STRICT.parse("A1: Rome", 1) == ["Rome"]


@pytest.mark.parametrize("name", ["numbered", "json"])
def test_instructions_for_one_question_read_as_english(name):
    fmt = get_format(name)
    one = fmt.messages("", ["What is 2 + 2?"])[0]["content"]
    assert "1 questions" not in one and "1 objects" not in one and "the question" in one
    assert "each of the 3 questions" in fmt.messages("", ["a", "b", "c"])[0]["content"]
