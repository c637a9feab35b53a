"""Keeping credentials out of logs, errors and reports."""

from __future__ import annotations

import os

#: Environment variables whose values are secret.
SECRET_ENV_VARS: tuple[str, ...] = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")


def redact(text: str) -> str:
    """``text`` with the value of every secret environment variable replaced by ``***``."""
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
