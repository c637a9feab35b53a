"""The digits adapter whose ``train`` waits for a file: a test holds one pipeline run in training while another runs.

With ``TRAIN_GATE=<path>`` in the environment, ``train`` creates ``<path>.waiting`` and
waits (two minutes at most) until ``<path>`` exists. Without it, it is the plain digits adapter.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from examples.digits.adapter import DigitsAdapter

GATE_ENV = "TRAIN_GATE"


class GatedDigitsAdapter(DigitsAdapter):
    """``DigitsAdapter`` whose training starts once ``$TRAIN_GATE`` exists."""

    def train(self, data_path, output_path, **kwargs):
        gate = os.environ.get(GATE_ENV)
        if gate:
            Path(f"{gate}.waiting").touch()
            deadline = time.monotonic() + 120
            while not Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        return super().train(data_path, output_path, **kwargs)
