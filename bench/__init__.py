"""Benchmarks that put envd's numbers next to the raw store and raw py-rattler on one machine."""
