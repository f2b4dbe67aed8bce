"""Benchmarks that print each figure beside its baseline from the same run (``make bench``)."""
