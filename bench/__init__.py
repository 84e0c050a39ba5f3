"""Benchmarks: each measures Townsquare next to a baseline in the same run."""
