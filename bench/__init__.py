"""Benchmarks: load through the service's real edges, beside the raw limits of the same machine."""
