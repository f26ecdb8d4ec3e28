"""The error classes as scripts see them: every exit code is the one the README promises for its
kind of failure, every reference is unique and comes back from the wire as its own class, and
messages stay bounded. `client/cli.py` exits with `exit_code` (tests/unit/client/
test_exit_codes.py); a mutant changing one class's code was caught by nothing before."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest

from envd.errors import (
    MAX_MESSAGE_CHARS,
    EnvdError,
    InternalError,
    UnsatisfiableError,
    all_error_classes,
    error_from_dict,
    error_to_dict,
)

README = Path(__file__).resolve().parents[3] / "README.md"
# which kind of failure each reference is, in the README's words
KINDS = {
    "bad input": "E100 E101 E102 E104 E110 E111 E112 E113 E114 E115 E130 E140 E141 E160 E205 E403",
    "resolution failed": "E103 E200 E201 E202 E203 E204 E210",
    "job/agent": "E300 E301 E302 E305 E306 E308",
    "coordinator": "E303 E304 E307 E310 E311",
    "store": "E309 E400 E401 E402 E404 E500 E501",
    "not allowed": "E120 E121",
}
OUTSIDE_THE_README = {"E000": 1, "E999": 70}  # the root class, and a bug (EX_SOFTWARE)


def readme_codes() -> dict[str, int]:
    """`2 bad input, 3 resolution failed, …` from the README's resolve section."""
    text = " ".join(README.read_text().split())
    words = "|".join(re.escape(kind) for kind in KINDS)
    found = {kind: int(code) for code, kind in re.findall(rf"\b(\d) ({words})\b", text)}
    assert set(found) == set(KINDS), f"the README's exit codes changed: {found}"
    return found


def test_every_error_exits_with_the_code_the_readme_gives_its_kind() -> None:
    codes = readme_codes()
    expected = dict(OUTSIDE_THE_README)
    for kind, references in KINDS.items():
        expected.update(dict.fromkeys(references.split(), codes[kind]))
    actual = {ref: cls.exit_code for ref, cls in all_error_classes().items()}
    assert actual == expected


def test_references_are_unique_and_come_back_as_their_own_class() -> None:
    declared: list[str] = []  # a subclass may keep its parent's reference (JobTransitionError)
    pending: list[type[EnvdError]] = [EnvdError]
    while pending:
        cls = pending.pop()
        if "reference" in vars(cls):
            declared.append(cls.reference)
        pending.extend(cls.__subclasses__())
    assert sorted(declared) == sorted(set(declared))
    found = all_error_classes()
    assert set(found) == set(declared)
    for reference, cls in found.items():
        back = error_from_dict(error_to_dict(cls("what happened", hint="what to do")))
        assert type(back) is cls and back.reference == reference
        assert (back.message, back.hint) == ("what happened", "what to do")


def test_a_subclass_keeping_its_parents_reference_never_takes_it_over() -> None:
    """E999 from the wire is an InternalError whether or not `envd.daemon.jobs` (whose
    JobTransitionError keeps E999) was imported before — or after — the first lookup."""
    assert type(error_from_dict({"reference": "E999", "message": "m"})) is InternalError

    class KeepsE999(InternalError):  # the order in which a reusing subclass appears
        pass

    class KeepsE201(UnsatisfiableError):
        pass

    try:
        assert type(error_from_dict({"reference": "E999", "message": "m"})) is InternalError
        assert type(error_from_dict({"reference": "E201", "message": "m"})) is UnsatisfiableError
        from envd.daemon.jobs import JobTransitionError

        assert JobTransitionError.reference == "E999"
        found = all_error_classes()
        assert found["E999"] is InternalError and found["E201"] is UnsatisfiableError
        back = error_from_dict(error_to_dict(JobTransitionError("left `completing`")))
        assert type(back) is InternalError and back.message == "left `completing`"
    finally:
        del KeepsE999, KeepsE201
        gc.collect()  # the throwaway classes leave `__subclasses__()`


def test_an_unknown_reference_or_an_empty_hint_comes_back_as_well_as_it_can() -> None:
    back = error_from_dict({"reference": "E777", "message": "from a newer coordinator"})
    assert type(back) is InternalError and back.message == "from a newer coordinator"
    assert error_from_dict({"reference": "E201", "message": "m", "hint": ""}).hint is None
    assert type(error_from_dict({})) is InternalError


@pytest.mark.parametrize("extra", [0, 1, 500])
def test_a_message_is_bounded_and_says_how_much_was_cut(extra: int) -> None:
    text = "x" * (MAX_MESSAGE_CHARS + extra)
    message = UnsatisfiableError(text).message
    if extra == 0:
        assert message == text
        return
    kept = MAX_MESSAGE_CHARS - 40
    assert message == f"{'x' * kept}… ({len(text) - kept} more characters)"
    assert len(message) <= MAX_MESSAGE_CHARS


def test_a_hint_is_bounded_to_a_quarter_of_a_message() -> None:
    limit = MAX_MESSAGE_CHARS // 4
    assert UnsatisfiableError("m", hint="h" * limit).hint == "h" * limit
    cut = UnsatisfiableError("m", hint="h" * (limit + 1)).hint
    assert cut == f"{'h' * (limit - 40)}… (41 more characters)"
    assert UnsatisfiableError("m").hint is None


def test_every_reference_is_in_the_readmes_table_under_its_exit_code() -> None:
    """The README's error table (`| exit | kind | references |`) lists each reference once,
    in the row of the exit code it exits with."""
    rows = re.findall(r"^\| (\d+) \| [^|]+ \| ([^|]+) \|$", README.read_text(), re.MULTILINE)
    listed = {ref: int(code) for code, refs in rows for ref in re.findall(r"\bE\d{3}\b", refs)}
    assert sum(len(re.findall(r"\bE\d{3}\b", refs)) for _, refs in rows) == len(listed)
    actual = {ref: cls.exit_code for ref, cls in all_error_classes().items()
              if ref not in OUTSIDE_THE_README}  # fmt: skip
    assert listed == actual
