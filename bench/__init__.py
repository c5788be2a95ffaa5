"""Benchmarks (not tests): they print numbers; tests reuse the load generator."""
