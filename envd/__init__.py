"""envd: pinned, cached, reproducible conda and PyPI environments for every platform."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
