"""The PyPI resolve bench runs end to end with one round and reports every figure; timings are
not judged, only that envd really resolved anew each round and the ratio is the medians'."""

from __future__ import annotations

import math
from pathlib import Path

from bench.pypi_resolve_bench import document, lines, measure


def test_one_round_measures_both_sides_and_reports_the_ratio(tmp_path: Path) -> None:
    result = measure(1, tmp_path)
    assert result.packages == 3  # envd-app 2.0, envd-native, envd-linux-only for linux-64
    doc = document(result)
    for key in ("envd_no_archives", "envd_with_archives", "uv_pip_compile"):
        assert doc[key]["median_ms"] > 0
    assert math.isclose(
        doc["ratio_envd_over_uv"],
        doc["envd_no_archives"]["median_ms"] / doc["uv_pip_compile"]["median_ms"],
    )
    text = lines(doc)
    assert text[0] == "PyPI resolve of envd-app (3 packages, linux-64), median (min-max) ms"
    assert text[-1].startswith(f"   ratio envd/uv: {doc['ratio_envd_over_uv']:.2f} ")
