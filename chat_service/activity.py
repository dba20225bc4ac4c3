"""When a person last used this environment: recorded in PostgreSQL, served on an internal port.

The operator puts an environment to sleep after a stretch without requests (its
`spec.idle`) and asks the chat service how long it has been. The answer has to be
right whichever replica is asked and after any of them restarts, so it is not kept
in one process's memory only:

- every request except probes and scrapes notes the time in this process
  (`ActivityRecorder.note`, one assignment);
- every ACTIVITY_RECORD_SECONDS the process writes the newest time it noted to the
  one-row table `chat_activity` (`GREATEST`, so a late writer never moves it back);
- `GET /activity` on ACTIVITY_PORT answers the later of the stored time and this
  process's own unwritten one. With several replicas or workers, the answer is at most
  ACTIVITY_RECORD_SECONDS behind the truth.

ACTIVITY_PORT is a port of its own: the Ingress routes only the API's Service port,
and the environment's NetworkPolicy admits only the operator's namespace to this one.
The recorder and the internal site are one cleanup context; this module does I/O
(the table, the listening socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from chat_service import queries
from chat_service.database import Database
from chat_service.errors import Unavailable, error_body
from chat_service.state import CONFIG, DB

log = logging.getLogger(__name__)

# Requests that are not a person using the environment: probes and scrapes.
_NOT_ACTIVITY = ("/health/", "/metrics")


class ActivityRecorder:
    """The last request this process served, and when it was last written down."""

    def __init__(self, db: Database, *, every: float) -> None:
        self._db = db
        self.every = every
        self.last: float | None = None
        """Wall-clock time (epoch seconds) of the newest request noted here."""
        self._written: float | None = None

    def note(self, when: float | None = None) -> None:
        """A request arrived (now, unless `when` says otherwise)."""
        self.last = time.time() if when is None else when

    async def write(self) -> bool:
        """Store the newest noted time if it is not stored yet; False if PostgreSQL
        could not be reached (the time stays noted and is written next round)."""
        last = self.last
        if last is None or last == self._written:
            return True
        try:
            await queries.record_activity(self._db, datetime.fromtimestamp(last, UTC))
        except Unavailable:
            return False
        self._written = last
        return True

    async def last_request(self) -> datetime | None:
        """The latest request any replica recorded, or this process noted."""
        stored = await queries.last_activity(self._db)
        mine = None if self.last is None else datetime.fromtimestamp(self.last, UTC)
        known = [t for t in (stored, mine) if t is not None]
        return max(known) if known else None

    async def run(self) -> None:
        """Write every `every` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self.every)
            await self.write()


ACTIVITY = web.AppKey("activity", ActivityRecorder)


def note_request(request: web.Request) -> None:
    """Note a request as activity, unless it is a probe or a scrape (called by the
    request middleware)."""
    recorder = request.app.get(ACTIVITY)
    if recorder is not None and not request.path.startswith(_NOT_ACTIVITY):
        recorder.note()


async def activity_context(app: web.Application) -> AsyncIterator[None]:
    """The recorder, its writer task and the internal site (ACTIVITY_PORT; 0: none)."""
    config = app[CONFIG]
    recorder = ActivityRecorder(app[DB], every=config.activity_record_seconds)
    app[ACTIVITY] = recorder
    task = asyncio.create_task(recorder.run(), name="activity-writer")
    runner = None
    if config.activity_port:
        runner = web.AppRunner(internal_app(recorder), access_log=None)
        await runner.setup()
        # Worker processes share the port, as they share the API's.
        site = web.TCPSite(runner, config.http_host, config.activity_port, reuse_port=True)
        await site.start()
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if runner is not None:
            await runner.cleanup()
        # What this process saw last is not lost with it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(recorder.write(), timeout=2)


def internal_app(recorder: ActivityRecorder) -> web.Application:
    """The application on ACTIVITY_PORT: `GET /activity` only."""
    app = web.Application()
    app[ACTIVITY] = recorder
    app.router.add_get("/activity", _activity, allow_head=False)
    return app


async def _activity(request: web.Request) -> web.Response:
    """GET /activity: `{"lastRequestAt": RFC 3339 or null, "recordEverySeconds": N}`;
    503 when PostgreSQL does not answer (unknown is not idle)."""
    recorder = request.app[ACTIVITY]
    try:
        last = await recorder.last_request()
    except Unavailable as e:
        return web.json_response(error_body("unavailable", e.message), status=503)
    return web.json_response({
        "lastRequestAt": None if last is None else _rfc3339(last),
        "recordEverySeconds": recorder.every,
    })


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
