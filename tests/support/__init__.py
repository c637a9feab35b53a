"""Helpers shared by the test suite.

``tests/`` is on ``sys.path`` while pytest runs (the rootdir ``conftest.py`` puts it
there), so import these as ``from support.seaweed import SeaweedServer``.
"""
