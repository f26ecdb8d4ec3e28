"""The bench's numbers as one JSON document, and the short table a person reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.client_startup import ClientStartup, startup_document, startup_lines
from bench.reresolve_bench import Reresolve
from bench.stats import MB, Latency, Repeated, Throughput, ratio
from bench.transmute_bench import Transmutes
from bench.upload_bench import Uploads

EMULATOR_NOTE = (
    "moto, fake-gcs-server and Azurite are emulators on loopback: the numbers compare envd's "
    "store layer with the SDK's own upload, not clouds"
)


@dataclass(frozen=True, slots=True)
class Setup:
    """What was measured, where: without it the numbers can't be compared across runs."""

    machine: dict[str, str | int]
    platform: str
    channel: str
    specs: tuple[str, ...]
    packages: int
    requests: int
    concurrency: int
    repeats: int
    warmup: int


@dataclass(frozen=True, slots=True)
class CacheHits:
    """The same answer asked of envd and read straight from its store."""

    envd: Latency
    envd_throughput: Throughput
    store: Latency
    store_throughput: Throughput


@dataclass(frozen=True, slots=True)
class ArchiveMeasurements:
    """Sections 4-6: what caching archives costs (uploads, transmutes) and saves (re-resolves)."""

    uploads: Uploads
    transmutes: Transmutes
    reresolve: Reresolve


@dataclass(frozen=True, slots=True)
class Measurements:
    setup: Setup
    cache_hits: CacheHits
    envd_cold: Repeated
    direct_cold: Repeated
    envd_warm: Repeated
    direct_warm: Repeated
    archives: ArchiveMeasurements | None = None  # None with `--skip-archives`
    client_startup: ClientStartup | None = None


def to_document(m: Measurements) -> dict[str, Any]:
    """Every number, grouped by comparison, each with the ratio it exists to show."""
    hits = m.cache_hits
    archives = {} if m.archives is None else _archive_document(m.archives)
    return {
        "setup": asdict(m.setup),
        "cache_hit": {
            "envd": {
                "latency": asdict(hits.envd),
                "throughput": asdict(hits.envd_throughput),
            },
            "raw_store": {
                "latency": asdict(hits.store),
                "throughput": asdict(hits.store_throughput),
            },
            "ratio_envd_over_raw": {
                "p50": ratio(hits.envd.p50_ms, hits.store.p50_ms),
                "p99": ratio(hits.envd.p99_ms, hits.store.p99_ms),
                "throughput": ratio(
                    hits.envd_throughput.requests_per_s, hits.store_throughput.requests_per_s
                ),
            },
        },
        "cold_resolve": {
            "envd": asdict(m.envd_cold),
            "direct_cold": asdict(m.direct_cold),
            "ratio_envd_over_direct": ratio(m.envd_cold.median_ms, m.direct_cold.median_ms),
        },
        "warm_resolve": {
            "envd": asdict(m.envd_warm),
            "direct_cold": asdict(m.direct_cold),
            "ratio_envd_over_direct_cold": ratio(m.envd_warm.median_ms, m.direct_cold.median_ms),
            "direct_warm": asdict(m.direct_warm),
            "ratio_envd_over_direct_warm": ratio(m.envd_warm.median_ms, m.direct_warm.median_ms),
        },
        **archives,
        **(
            {}
            if m.client_startup is None
            else {"client_startup": startup_document(m.client_startup)}
        ),
    }


def _archive_document(m: ArchiveMeasurements) -> dict[str, Any]:
    uploads, transmutes, again = m.uploads, m.transmutes, m.reresolve
    return {
        "upload": {
            "note": EMULATOR_NOTE,
            "file_sizes": list(uploads.file_sizes),
            "rounds": uploads.rounds,
            "backends": {
                c.backend: {
                    "emulator": c.emulator,
                    "envd": asdict(c.envd),
                    "raw": asdict(c.raw),
                    "raw_call": c.raw_call,
                    "ratio_envd_over_raw": ratio(c.envd.mb_per_s, c.raw.mb_per_s),
                }
                for c in uploads.compared
            },
            "skipped": dict(uploads.skipped),
        },
        "transmute": {
            **{k: v for k, v in asdict(transmutes).items() if k not in ("envd", "direct")},
            "envd": asdict(transmutes.envd),
            "direct": asdict(transmutes.direct),
            "ratio_envd_over_direct": ratio(transmutes.envd.mb_per_s, transmutes.direct.mb_per_s),
        },
        "reresolve": {
            "first": {
                "specs": list(again.first_specs),
                "stored_bytes": again.first_stored_bytes,
                "stored_archives": again.first_stored_archives,
            },
            "second": {
                "specs": list(again.second_specs),
                "environment_bytes": again.environment_bytes,
                "environment_archives": again.environment_archives,
                "uploaded_bytes": again.uploaded_bytes,
                "uploaded": list(again.uploaded),
            },
            "ratio_uploaded_over_environment": ratio(again.uploaded_bytes, again.environment_bytes),
        },
    }


def render(doc: dict[str, Any]) -> str:
    """A table per comparison, from the document itself so text and JSON never disagree."""
    setup, hit = doc["setup"], doc["cache_hit"]
    cold, warm = doc["cold_resolve"], doc["warm_resolve"]
    envd, raw, hit_ratio = hit["envd"], hit["raw_store"], hit["ratio_envd_over_raw"]
    machine = ", ".join(f"{k}={v}" for k, v in setup["machine"].items())
    lines = [
        f"machine:  {machine}",
        f"spec:     {' '.join(setup['specs'])} on {setup['platform']} "
        f"({setup['packages']} packages solved)",
        f"channel:  {setup['channel']}",
        "",
        f"1. cache-hit Resolve: {setup['requests']} sequential requests after "
        f"{setup['warmup']} warm-up; throughput with {setup['concurrency']} client threads",
        f"   {'':<26}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>12}",
        _hit_row("envd (gRPC, unix socket)", envd),
        _hit_row("raw store read", raw),
        f"   {'ratio envd/raw':<26}{hit_ratio['p50']:>10.2f}{hit_ratio['p99']:>10.2f}"
        f"{hit_ratio['throughput']:>12.3f}",
        "",
        f"2. cold resolve, median of {setup['repeats']} (min-max) ms",
        repeat_row("envd, fresh home", cold["envd"]),
        repeat_row("py-rattler solve, cold", cold["direct_cold"]),
        f"   {'ratio envd/direct':<26}{cold['ratio_envd_over_direct']:>10.2f}",
        "",
        f"3. warm-agent resolve (force=True), median of {setup['repeats']} (min-max) ms",
        repeat_row("envd, warm agent", warm["envd"]),
        repeat_row("py-rattler solve, cold", warm["direct_cold"]),
        f"   {'ratio envd/direct cold':<26}{warm['ratio_envd_over_direct_cold']:>10.2f}",
        repeat_row("py-rattler solve, warm", warm["direct_warm"]),
        f"   {'ratio envd/direct warm':<26}{warm['ratio_envd_over_direct_warm']:>10.2f}",
    ]
    if "upload" in doc:
        lines += ["", *_upload_lines(doc["upload"]), "", *_transmute_lines(doc["transmute"])]
        lines += ["", *_reresolve_lines(doc["reresolve"])]
    else:
        lines += ["", "4-6. archive sections skipped (--skip-archives)"]
    if "client_startup" in doc:
        lines += ["", *startup_lines(doc["client_startup"], repeat_row)]
    return "\n".join(lines)


def _upload_lines(up: dict[str, Any]) -> list[str]:
    sizes = up["file_sizes"]
    counts = ", ".join(f"{sizes.count(s)} x {_size(s)}" for s in sorted(set(sizes)))
    lines = [
        f"4. archive upload: {up['rounds']} round(s) of {len(sizes)} files ({counts}), "
        f"{_size(up['rounds'] * sum(sizes))} per side, envd and the SDK alternating",
        f"   {up['note']}",
        f"   {'put_file_if_absent vs SDK':<26}{'envd MB/s':>10}{'raw MB/s':>10}{'envd/raw':>10}",
    ]
    for backend, row in up["backends"].items():
        label = f"{backend} ({row['emulator']})"
        lines.append(
            f"   {label:<26}{row['envd']['mb_per_s']:>10.1f}{row['raw']['mb_per_s']:>10.1f}"
            f"{row['ratio_envd_over_raw']:>10.2f}"
        )
    lines += [f"   raw {backend}: {row['raw_call']}" for backend, row in up["backends"].items()]
    lines += [f"   skipped {backend}: {why}" for backend, why in up["skipped"].items()]
    return lines


def _transmute_lines(tr: dict[str, Any]) -> list[str]:
    envd, direct = tr["envd"], tr["direct"]
    return [
        f"5. transmute .tar.bz2 -> .conda at zstd level {tr['level']}: {len(tr['archives'])} "
        f"archives, {tr['input_bytes'] / MB:.1f} MB in; median of {tr['rounds']} round(s)",
        f"   {'':<40}{'MB/s in':>10}  {'(min-max)':<14}{'MB out':>8}",
        _transmute_row(f"envd Transmuter, {tr['workers']} workers (+verify)", envd),
        _transmute_row("conda-package-streaming, serial", direct),
        f"   {'ratio envd/direct':<40}{tr['ratio_envd_over_direct']:>10.2f}",
    ]


def _transmute_row(label: str, row: dict[str, Any]) -> str:
    samples = row["samples_mb_per_s"]
    spread = f"({min(samples):.1f}-{max(samples):.1f})"
    return f"   {label:<40}{row['mb_per_s']:>10.2f}  {spread:<14}{row['output_bytes'] / MB:>8.1f}"


def _reresolve_lines(again: dict[str, Any]) -> list[str]:
    first, second = again["first"], again["second"]
    return [
        "6. re-resolve sharing packages (embedded coordinator, local store, with archives)",
        f"   first  `{' '.join(first['specs'])}`: {first['stored_archives']} archives, "
        f"{first['stored_bytes']} bytes under pkgs/",
        f"   second `{' '.join(second['specs'])}`: environment {second['environment_archives']} "
        f"archives, {second['environment_bytes']} bytes; uploaded {second['uploaded_bytes']} "
        f"bytes ({', '.join(second['uploaded']) or 'nothing'})",
        f"   {'ratio uploaded/environment':<40}{again['ratio_uploaded_over_environment']:>10.3f}",
    ]


def _size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


def _hit_row(label: str, row: dict[str, dict[str, float]]) -> str:
    latency, throughput = row["latency"], row["throughput"]
    return (
        f"   {label:<26}{latency['p50_ms']:>10.3f}{latency['p99_ms']:>10.3f}"
        f"{throughput['requests_per_s']:>12.1f}"
    )


def repeat_row(label: str, row: dict[str, Any]) -> str:
    spread = f"({row['min_ms']:.1f}-{row['max_ms']:.1f})"
    return f"   {label:<26}{row['median_ms']:>10.1f}  {spread}"
