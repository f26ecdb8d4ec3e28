"""The PostgreSQL state's versioned schema: migrations applied at start, a newer one refused."""

from __future__ import annotations

import psycopg

from envd.errors import StateError

# Each entry moves the schema from version i to i+1; never edit a released one, append.
MIGRATIONS: tuple[str, ...] = (
    # 1: jobs (as in SQLite, plus the replica completing a job), replica and agent liveness
    """
    CREATE TABLE jobs (
        job_id text PRIMARY KEY,
        req_id text NOT NULL,
        platform text NOT NULL,
        canonical_spec bytea NOT NULL,
        no_archives boolean NOT NULL,
        requester jsonb NOT NULL,
        status text NOT NULL
            CHECK (status IN ('queued', 'leased', 'completing', 'done', 'failed', 'cancelled')),
        lease_id text,
        agent_id text,
        lease_expires_at double precision,
        attempts integer NOT NULL DEFAULT 0,
        full_id text,
        error jsonb,
        created_at double precision NOT NULL,
        queued_at double precision NOT NULL,
        -- the replica moving the default pointer of a completing job; another replica takes
        -- such a job over once that one stops heartbeating
        completer text
    );
    -- single-flight: at most one in-flight job per (req_id, platform, archives or not)
    CREATE UNIQUE INDEX jobs_in_flight ON jobs (req_id, platform, no_archives)
        WHERE status IN ('queued', 'leased', 'completing');
    CREATE UNIQUE INDEX jobs_lease ON jobs (lease_id) WHERE lease_id IS NOT NULL;
    CREATE INDEX jobs_queue ON jobs (platform, created_at) WHERE status = 'queued';
    CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'leased';
    CREATE INDEX jobs_completing ON jobs (completer) WHERE status = 'completing';
    -- coordinator replicas alive on this database (the database's own clock)
    CREATE TABLE replicas (
        replica_id text PRIMARY KEY,
        started_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
    );
    -- agents connected to each replica, so "an agent serves X" is known fleet-wide;
    -- expires_at is the agent's last heartbeat plus the lease TTL (the coordinators' clock)
    CREATE TABLE agents (
        replica_id text NOT NULL,
        session bigint NOT NULL,
        agent_id text NOT NULL,
        platforms text[] NOT NULL,
        slots integer NOT NULL,
        expires_at double precision NOT NULL,
        PRIMARY KEY (replica_id, session)
    );
    """,
    # 2: the mark of a job whose PyPI packages need a native build (leased only to an agent
    # whose native platform is the job's)
    """
    ALTER TABLE jobs ADD COLUMN native_build text;
    """,
    # 3: the python a native-only job's builds need (leased only to a native agent that
    # builds for it)
    """
    ALTER TABLE jobs ADD COLUMN native_python text;
    """,
)
LATEST = len(MIGRATIONS)
# any constant: replicas starting together apply migrations one at a time
_MIGRATION_LOCK = 0x656E7664


def migrate(conn: psycopg.Connection[tuple[object, ...]], where: str) -> int:
    """Bring the schema up to LATEST in one transaction; refuse one newer than this envd
    knows. Returns the version found before."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS envd_schema_version ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM envd_schema_version").fetchone()
        found = int(row[0]) if row else 0  # type: ignore[call-overload]
        if found > LATEST:
            raise StateError(
                f"failed to open the coordinator state `{where}`: its schema is version "
                f"{found}, newer than this envd knows ({LATEST})",
                hint="run the envd release that wrote it (or newer); a replica never "
                "downgrades the shared schema",
            )
        for version in range(found + 1, LATEST + 1):
            conn.execute(MIGRATIONS[version - 1].encode())
            conn.execute("INSERT INTO envd_schema_version (version) VALUES (%s)", (version,))
    return found
