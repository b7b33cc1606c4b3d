"""The MLflow front door: Signoff in front of MLflow, so governance cannot be bypassed.

`routes` says which MLflow route touches what at which level, `gate` applies the policy to it,
`resources` looks up what tracking calls touch, `searching` fills filtered search pages,
`forwarding` streams the call to MLflow and its answer back; the catch-all router is
`api.routers.front_door`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from api.front_door.forwarding import Upstream
from api.front_door.resources import Resources
from workflows.settings import WorkerSettings


@dataclass
class FrontDoor:
    """What the front door keeps per process: the pooled client and the lookup caches."""

    upstream: Upstream
    resources: Resources

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: WorkerSettings) -> AsyncIterator[FrontDoor]:
        upstream = Upstream(settings)
        try:
            yield cls(upstream, Resources(upstream))
        finally:
            await upstream.aclose()
