"""Benchmarks of the framework on this machine: ``make bench`` (``python -m bench``).

Every comparison is measured side by side in the same run (interleaved, medians of
repeats); the figures go to ``bench/results/latest.json`` and ``docs/benchmarks.md``.
Not part of ``make test``: ``tests/bench`` only smoke-tests these scripts at tiny sizes.
"""
