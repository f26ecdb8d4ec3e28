"""`envd-client info`: which coordinator (or embedded home), store and state this client uses.

It starts nothing and creates nothing: a configured coordinator is asked with GetInfo; the
embedded default is described from the settings and what exists on disk.
"""

from __future__ import annotations

from typing import Any

import envd

from .config import ClientConfig
from .listing import aligned

EMBEDDED_AGENT = "the embedded agent, started with each command that resolves"


def gather_info(config: ClientConfig) -> dict[str, Any]:
    from envd.platforms import host_platform_name

    document: dict[str, Any] = {
        "version": envd.__version__,
        "protocol_version": envd.PROTOCOL_VERSION,
        "this_platform": host_platform_name(),
        "config_file": config.source or None,
    }
    if config.coordinator:
        from .session import connect

        with connect(config) as (_, info):
            document |= {
                "mode": "coordinator",
                "coordinator": config.coordinator,
                "coordinator_version": info.version,
                "home": None,
                "store_url": info.store_url,
                "state_path": None,  # the coordinator's own; GetInfo does not report it
                "platforms": sorted(info.platforms),
                "agents_per_platform": info.agents_per_platform,
            }
        return document
    from envd.platforms import known_platforms

    home = config.home
    document |= {
        "mode": "embedded",
        "coordinator": None,
        "coordinator_version": envd.__version__,
        "home": str(home),
        "home_source": config.home_source,
        "home_exists": home.is_dir(),
        "store_url": _shown_store(config),
        "state_path": str(config.state_path),
        "state_exists": config.state_path.is_file(),
        "platforms": list(known_platforms()),
    }
    return document


def _shown_store(config: ClientConfig) -> str:
    if config.store:
        return config.store
    return (config.home / "store").as_uri()


def info_text(document: dict[str, Any]) -> str:
    rows: list[list[str]] = [["version", f"envd-client {document['version']}"]]
    if document["mode"] == "coordinator":
        rows += [
            ["coordinator", f"{document['coordinator']} (envd {document['coordinator_version']})"],
            ["store", document["store_url"]],
            ["state", "kept by the coordinator"],
            ["agents", _agents(document["agents_per_platform"], document["platforms"])],
        ]
    else:
        made = "" if document["home_exists"] else " (not created yet)"
        state = "" if document["state_exists"] else " (not created yet)"
        rows += [
            ["coordinator", "embedded (none configured: --coordinator or ENVD_COORDINATOR)"],
            ["home", f"{document['home']}{made}  [from {document['home_source']}]"],
            ["store", document["store_url"]],
            ["state", f"{document['state_path']}{state}"],
            ["agents", f"{EMBEDDED_AGENT}; serves every platform"],
        ]
    rows.append(["this machine", document["this_platform"]])
    if document["config_file"]:
        rows.append(["config", document["config_file"]])
    return aligned([[f"{k}:", v] for k, v in rows])


def _agents(per_platform: dict[str, int], platforms: list[str]) -> str:
    if not platforms:
        return "none connected"
    if not per_platform:  # an older coordinator: only which platforms are served
        return "connected, serving " + ", ".join(platforms)
    return ", ".join(f"{p}: {n} agent{'s' if n != 1 else ''}" for p, n in per_platform.items())


__all__ = ["gather_info", "info_text"]
