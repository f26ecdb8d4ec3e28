"""envd-client: CLI, typed Python API, embedded default."""
