"""Benchmarks of the framework on this machine: ``make bench`` (``python -m bench``).

Every comparison is measured side by side in the same run (interleaved repeats, each row
their median with min-max); the figures go to ``bench/results/latest.json`` and
``docs/benchmarks.md``, and ``python -m bench.regression`` names the rows more than 15% worse
than the committed results.
Not part of ``make test``: ``tests/bench`` only smoke-tests these scripts at tiny sizes.
"""
