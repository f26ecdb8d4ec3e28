"""The embedded default: the composition root that runs a daemon and an agent in-process."""

from .coordinator import EmbeddedCoordinator

__all__ = ["EmbeddedCoordinator"]
