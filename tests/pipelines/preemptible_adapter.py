"""The digits adapter, killed like a preempted pod (``SIGKILL``, no clean-up) partway through a shard.

With ``PREEMPT_AFTER_BATCHES=N`` in the environment, the process kills itself in its
(N+1)-th ``predict`` call, a second after entering it, so the N batches already
predicted have been written. Without it, it is the plain digits adapter.
"""

from __future__ import annotations

import os
import signal
import time

from examples.digits.adapter import DigitsAdapter

PREEMPT_ENV = "PREEMPT_AFTER_BATCHES"


class PreemptedDigitsAdapter(DigitsAdapter):
    """``DigitsAdapter`` whose process is SIGKILLed after ``$PREEMPT_AFTER_BATCHES`` predicted batches."""

    _calls = 0

    def predict(self, batch, **kwargs):
        limit = os.environ.get(PREEMPT_ENV)
        if limit is not None:
            self._calls += 1
            if self._calls > int(limit):
                time.sleep(1.0)  # let the writes of the batches already predicted land
                os.kill(os.getpid(), signal.SIGKILL)
        return super().predict(batch, **kwargs)
