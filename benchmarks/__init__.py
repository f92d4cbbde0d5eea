"""Benchmarks against peers; run with `make bench`."""
