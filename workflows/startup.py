"""Start-up of a production process: wait for what it depends on (the ledger's database,
Temporal, MLflow) with backoff, saying which one it waits for and where, then migrate.

In a compose file or a Kubernetes namespace the processes start in any order: the API and the
worker must neither crash-loop nor hang silently while PostgreSQL, Temporal or MLflow comes
up. Each wait gives up after `SIGNOFF_STARTUP_TIMEOUT_S` with a sentence naming the dependency
and the setting that points at it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.engine import make_url

from workflows.ledger import Ledger
from workflows.settings import WorkerSettings

T = TypeVar("T")

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


class StartupFailed(Exception):
    """A dependency did not answer within `SIGNOFF_STARTUP_TIMEOUT_S`; `str()` says which,
    where, why, and which setting points at it."""


class StartupAborted(Exception):
    """The process was asked to stop while it was still waiting."""


def database_name(url: str) -> tuple[str, str]:
    """(`PostgreSQL` / `SQLite` / the backend, the URL without its password) for messages."""
    parsed = make_url(url)
    kind = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(
        parsed.get_backend_name(), parsed.get_backend_name()
    )
    return kind, parsed.render_as_string(hide_password=True)


def _first_line(err: Exception) -> str:
    """What went wrong, in one line (a driver's error, not SQLAlchemy's wrapping of it)."""
    cause = getattr(err, "orig", None) or err
    text = getattr(cause, "message", None) or str(cause) or type(cause).__name__
    return text.strip().splitlines()[0]


async def wait_for(
    what: str,
    where: str,
    setting: str,
    probe: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    stop: asyncio.Event | None = None,
) -> T:
    """`probe()`'s result once it stops raising; between attempts a delay doubling from
    `FIRST_DELAY_S` to `MAX_DELAY_S`, each failure logged with what is awaited. Raises
    StartupFailed after `timeout_s`, StartupAborted as soon as `stop` is set."""
    deadline = time.monotonic() + timeout_s
    delay = FIRST_DELAY_S
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await probe()
        except Exception as err:  # any failure of the probe means: not there yet
            problem = _first_line(err)
        else:
            if attempt > 1:
                log.info("%s at %s answers; going on", what, where)
            return result
        left = deadline - time.monotonic()
        if left <= 0:
            raise StartupFailed(
                f"{what} at {where} did not answer within {timeout_s:g} s ({problem}); check "
                f"{setting}, or raise SIGNOFF_STARTUP_TIMEOUT_S"
            )
        pause = min(delay, left)
        log.warning(
            "waiting for %s at %s (attempt %d: %s); next try in %.1f s",
            what,
            where,
            attempt,
            problem,
            pause,
        )
        if stop is None:
            await asyncio.sleep(pause)
        else:
            try:
                await asyncio.wait_for(stop.wait(), pause)
            except TimeoutError:
                pass
            else:
                raise StartupAborted(f"stopped while waiting for {what}")
        delay = min(delay * 2, MAX_DELAY_S)


async def ready_ledger(
    settings: WorkerSettings, ledger: Ledger, *, stop: asyncio.Event | None = None
) -> None:
    """Wait for the ledger's database, then migrate it (behind the migration lock)."""
    kind, where = database_name(ledger.url)
    await wait_for(
        kind,
        where,
        "SIGNOFF_DATABASE_URL",
        ledger.ping,
        timeout_s=settings.startup_timeout_s,
        stop=stop,
    )
    await ledger.migrate()
