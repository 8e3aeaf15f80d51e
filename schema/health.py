"""Bodies of `GET /healthz` and `GET /readyz`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessChecks(BaseModel):
    """Whether each service we depend on answered."""

    database: bool
    redis: bool
    bus: bool


class Readiness(BaseModel):
    ready: bool
    checks: ReadinessChecks
