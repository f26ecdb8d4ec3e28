"""The `resolve --lock` bench runs end to end with one round and reports every figure; timings
are not judged, only that each side really did what it claims (checked inside `measure`: the
locked run's description names the lock's solver, the other a real one) and the ratio is the
medians'."""

from __future__ import annotations

import math
from pathlib import Path

from bench.lock_bench import document, lines, measure


def test_one_round_measures_both_sides_and_reports_the_ratio(tmp_path: Path) -> None:
    result = measure(1, tmp_path)
    assert result.packages > 1  # python 3.9 and what it depends on, from the bundled channel
    assert (tmp_path / "conda-lock.yml").exists()
    doc = document(result)
    for key in ("locked", "solved"):
        assert doc[key]["median_ms"] > 0
    assert math.isclose(
        doc["ratio_locked_over_solved"],
        doc["locked"]["median_ms"] / doc["solved"]["median_ms"],
    )
    text = lines(doc)
    assert text[0] == (
        f"resolve of python=3.9 ({result.packages} packages, linux-64), whole process, cold "
        "req_id, median (min-max) ms"
    )
    assert text[-1].startswith(f"   ratio locked/solved: {doc['ratio_locked_over_solved']:.2f};")
