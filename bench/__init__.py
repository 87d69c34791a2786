"""Benchmarks: the pipeline against raw baselines measured in the same run (``make bench``)."""
