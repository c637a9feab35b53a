"""The ``model-adapter`` command line."""
