"""An adapter module that cannot be imported (it raises at import time): for the bad-input tests."""

raise RuntimeError("this adapter module is broken on purpose")
