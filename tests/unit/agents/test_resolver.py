"""The resolver contract's shared error: every missing package at once, with suggestions."""

from __future__ import annotations

from envd.agents.resolver import missing_packages_error, suggest

WHERE = "channels `https://conda.anaconda.org/conda-forge` for `linux-64` (and `noarch`)"
KNOWN = ["numpy", "pandas", "python", "python_abi", "scipy", "openssl"]


def test_every_missing_name_with_the_closest_known_names() -> None:
    error = missing_packages_error(["nump", "pandsa"], where=WHERE, known=KNOWN)
    assert error.reference == "E200"
    assert error.message == (
        "packages `nump`, `pandsa` not found in channels `https://conda.anaconda.org/conda-forge`"
        " for `linux-64` (and `noarch`); did you mean `numpy`, `pandas`?"
    )
    assert error.hint == "check the names' spelling and the channel list"


def test_no_suggestion_when_nothing_is_close() -> None:
    error = missing_packages_error(["breathe"], where=WHERE, known=KNOWN)
    assert error.message == f"package `breathe` not found in {WHERE}"


def test_requested_names_are_not_suggested_and_suggestions_do_not_repeat() -> None:
    assert suggest(["cython", "ipython"], KNOWN, requested=["python"]) == []
    assert suggest(["cython", "ipython"], KNOWN) == ["python"]
    assert suggest(["scipyy", "scpy", "zzz"], KNOWN) == ["scipy"]
