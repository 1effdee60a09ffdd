"""Benchmarks: run by hand, print figures as ratios against baselines measured in the same run."""
