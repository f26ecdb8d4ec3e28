"""The coordinator's tunables, passed whole to every part that needs one of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from envd.channel_policy import ChannelPolicy

DEFAULT_MAX_CONCURRENT_CALLS = 4096


@dataclass(frozen=True, slots=True)
class CoordinatorSettings:
    store_url: str
    lease_ttl: float = 30.0
    heartbeat_interval: float = 5.0
    no_agent_timeout: float = 300.0
    sweep_interval: float = 0.5
    # how long moving the default pointer may keep failing on transient store errors before
    # the job is queued again
    completion_timeout: float = 60.0
    # leases of one job that may end without a result (expired) before it fails
    max_attempts: int = 5
    # open gRPC calls (Resolve streams, agent streams) before new ones are refused
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS
    # most lease ids one heartbeat may carry (more are refused, not looked up)
    max_heartbeat_leases: int = 1024
    # which channels requests may name (default: http(s) and names, no local folders)
    channel_policy: ChannelPolicy = field(default_factory=ChannelPolicy)
