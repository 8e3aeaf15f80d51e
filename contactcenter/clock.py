"""The service's clock: wall time in ms, passed into every live-state script so tests can set it."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
