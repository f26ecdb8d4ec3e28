"""The dedupe burst of bench/dedupe_burst.py at a size for the suite: one job per platform,
every request accepted before any agent exists and answered once one does."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.dedupe_burst import run_burst

pytestmark = pytest.mark.integration


def test_a_burst_of_identical_requests_makes_one_job_per_platform(tmp_path: Path) -> None:
    result = run_burst(120, tmp_path)
    assert result.failed_streams == 0
    assert result.jobs_per_platform == {"linux-64": 1, "osx-arm64": 1}
    assert result.outcomes == {"resolved": 2, "dedup": 2 * 120 - 2}
