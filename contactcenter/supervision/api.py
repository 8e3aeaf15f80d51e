"""The supervisors' API: the live figures (a snapshot, and a Server-Sent Events stream of them), their history
per interval or day (JSON or CSV), supervisors' creation, and their actions on agents and waiting work."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator, Viewer
from contactcenter.errors import Invalid
from contactcenter.http_errors import read_body
from contactcenter.store.directory import Directory
from contactcenter.supervision.actions import SupervisorActions
from contactcenter.supervision.history import INTERVALS, MAX_DAYS, HistoryRow, as_csv, history
from contactcenter.supervision.watch import QueueWatch
from schema import AgentCreate, AgentCreated
from schema.supervision import AgentStateChange, Moved, MoveWork, QueueStats

# A stream with nothing new sends a comment this often, so proxies and the client see it alive.
KEEPALIVE_SECONDS = 15.0
# A client that does not take a frame within this long is cut off (it reconnects with Last-Event-ID).
SEND_TIMEOUT_SECONDS = 30.0
MAX_EVENT_ID = 2**63 - 1

CREATE_SUPERVISOR = Operation(
    "POST",
    "/api/v1/supervisors",
    "createSupervisor",
    "Create a supervisor of existing queues; its token is shown only in this answer",
    {201: Answer("the supervisor and its token", AgentCreated), **failures(400, 401, 403, 408, 413, 503)},
    access=Access.ADMIN,
    body=AgentCreate,
)
STATS = Operation(
    "GET",
    "/api/v1/queues/stats",
    "getQueueStats",
    "The live figures of the queues the caller may see, their agents and today's intervals (docs/supervisors.md)",
    {200: Answer("the figures", QueueStats), **failures(401, 403, 503)},
    access=Access.VIEWER,
)
STREAM = Operation(
    "GET",
    "/api/v1/supervisor/stream",
    "streamQueueStats",
    "Server-Sent Events: each `data:` the figures as `GET /api/v1/queues/stats` gives them, pushed as they change",
    {
        200: Answer(
            "the stream; each event's `id` is the last event folded in, for `Last-Event-ID`",
            media_type="text/event-stream",
            schema={"type": "string"},
        ),
        **failures(400, 401, 403, 503),
    },
    access=Access.VIEWER,
    parameters=(
        Parameter("token", "query", "the bearer token, for browsers' EventSource, which cannot set headers"),
        Parameter(
            "Last-Event-ID",
            "header",
            "the last id seen: the stream's first frame is skipped when nothing changed since",
            schema={"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID},
        ),
    ),
)
HISTORY_PARAMETERS = (
    Parameter("from", "query", "first day, YYYY-MM-DD (UTC; default today)", schema={"type": "string"}),
    Parameter("to", "query", "last day, YYYY-MM-DD (UTC; default the first)", schema={"type": "string"}),
    Parameter("interval", "query", "`15m` (default) or `day`", schema={"type": "string", "enum": list(INTERVALS)}),
)
HISTORY = Operation(
    "GET",
    "/api/v1/queues/history",
    "getQueueHistory",
    "The figures per queue and 15-minute interval or day, from the event log",
    {200: Answer("the figures per interval and queue", schema={"type": "object"}), **failures(400, 401, 403, 503)},
    access=Access.VIEWER,
    parameters=HISTORY_PARAMETERS,
)
HISTORY_CSV = Operation(
    "GET",
    "/api/v1/queues/history.csv",
    "getQueueHistoryCsv",
    "The same history as CSV, for a spreadsheet",
    {
        200: Answer("one row per interval and queue", media_type="text/csv", schema={"type": "string"}),
        **failures(400, 401, 403, 503),
    },
    access=Access.VIEWER,
    parameters=HISTORY_PARAMETERS,
)
SET_AGENT_STATE = Operation(
    "POST",
    "/api/v1/supervisor/agents/{agent_id}/state",
    "setAgentState",
    "Set an agent of the supervisor's queues available, away or offline (audited: supervisor.acted)",
    {200: Answer("the state set", AgentStateChange), **failures(400, 401, 403, 404, 408, 413, 503)},
    access=Access.SUPERVISOR,
    body=AgentStateChange,
    parameters=(
        Parameter("agent_id", "path", "the agent", required=True, schema={"type": "string", "format": "uuid"}),
    ),
)
MOVE = Operation(
    "POST",
    "/api/v1/supervisor/conversations/{conversation_id}/move",
    "moveWaitingWork",
    "Move a conversation's waiting work to another queue the supervisor supervises (audited: supervisor.acted)",
    {200: Answer("where it went", Moved), **failures(400, 401, 403, 404, 408, 409, 413, 503)},
    access=Access.SUPERVISOR,
    body=MoveWork,
    parameters=(
        Parameter(
            "conversation_id", "path", "the conversation", required=True, schema={"type": "string", "format": "uuid"}
        ),
    ),
)


def _path_uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise Invalid(f"{name} must be a UUID", field=name) from None


def _day(request: web.Request, name: str, default: date) -> date:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return date.fromisoformat(text) if len(text) == 10 else _not_a_day(name)
    except ValueError:
        return _not_a_day(name)


def _not_a_day(name: str) -> date:
    raise Invalid(f"{name} must be a day, YYYY-MM-DD", field=name)


def _choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    value = request.query.get(name, choices[0])
    if value not in choices:
        raise Invalid(f"{name} must be one of {', '.join(choices)}", field=name)
    return value


class SupervisorApi:
    OPERATIONS = (CREATE_SUPERVISOR, STATS, STREAM, HISTORY, HISTORY_CSV, SET_AGENT_STATE, MOVE)

    def __init__(
        self,
        auth: Authenticator,
        pool: asyncpg.Pool,
        directory: Directory,
        watch: QueueWatch,
        actions: SupervisorActions,
        *,
        frame_seconds: float,
        short_abandon_seconds: float,
    ) -> None:
        self._auth = auth
        self._pool = pool
        self._directory = directory
        self._watch = watch
        self._actions = actions
        self._frame_seconds = frame_seconds
        self._short_abandon_seconds = short_abandon_seconds
        # Set as the service begins to stop: every stream ends, and `EventSource` reconnects (to another process).
        self._ending = asyncio.Event()

    async def end_streams(self) -> None:
        """As soon as the service begins to stop: each stream ends after the frame it is sending, rather than
        when this process's shutdown timeout has run out."""
        self._ending.set()

    def routes(self) -> list[web.RouteDef]:
        return [
            CREATE_SUPERVISOR.route(self.create_supervisor),
            STATS.route(self.stats),
            STREAM.route(self.stream),
            HISTORY.route(self.history),
            HISTORY_CSV.route(self.history_csv),
            SET_AGENT_STATE.route(self.set_agent_state),
            MOVE.route(self.move),
        ]

    async def create_supervisor(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        created = await self._directory.create_supervisor(await read_body(request, AgentCreate))
        return web.json_response(created.model_dump(mode="json"), status=201)

    async def stats(self, request: web.Request) -> web.Response:
        viewer = await self._auth.require_viewer(request)
        return web.json_response(self._watch.snapshot(viewer.queue_ids))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._auth.require_viewer(request, allow_query=True)
        last_seen = self._last_event_id(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        await self._send(response, b"retry: 2000\n\n")
        if last_seen != self._watch.figures.last_event_id:
            await self._send_frame(response, viewer)
        seen = self._watch.version
        while not self._watch.stopping:
            version = await self._next_change(seen)
            if self._ending.is_set():
                break
            if version == seen:
                await self._send(response, b": keep-alive\n\n")
                continue
            # Changes that come close together go out as one frame: the latest figures.
            await asyncio.sleep(self._frame_seconds)
            seen = self._watch.version
            await self._send_frame(response, viewer)
        return response

    async def _next_change(self, seen: int) -> int:
        """The watch's version once it differs from `seen`, or after `KEEPALIVE_SECONDS`, or as streams end."""
        change = asyncio.ensure_future(self._watch.wait_change(seen, KEEPALIVE_SECONDS))
        ending = asyncio.ensure_future(self._ending.wait())
        try:
            await asyncio.wait((change, ending), return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()
            ending.cancel()
        return self._watch.version

    def _last_event_id(self, request: web.Request) -> int | None:
        text = request.headers.get("Last-Event-ID")
        if text is None or text == "":
            return None
        # The length first: Python will not read an integer of more than 4,300 digits (a ValueError, a 500).
        if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_EVENT_ID)) or int(text) > MAX_EVENT_ID:
            raise Invalid("Last-Event-ID must be an id this stream gave", field="Last-Event-ID")
        return int(text)

    async def _send_frame(self, response: web.StreamResponse, viewer: Viewer) -> None:
        frame = self._watch.frame(viewer.queue_ids)
        await self._send(response, f"id: {self._watch.figures.last_event_id}\ndata: {frame}\n\n".encode())

    async def _send(self, response: web.StreamResponse, chunk: bytes) -> None:
        await asyncio.wait_for(response.write(chunk), SEND_TIMEOUT_SECONDS)

    async def history(self, request: web.Request) -> web.Response:
        interval, rows = await self._history(request)
        return web.json_response({"interval": interval, "rows": [row.as_dict() for row in rows]})

    async def history_csv(self, request: web.Request) -> web.Response:
        interval, rows = await self._history(request)
        return web.Response(
            text=as_csv(rows),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="queues-{interval}.csv"'},
        )

    async def _history(self, request: web.Request) -> tuple[str, list[HistoryRow]]:
        viewer = await self._auth.require_viewer(request)
        today = datetime.now(UTC).date()
        first = _day(request, "from", today)
        last = _day(request, "to", first)
        interval = _choice(request, "interval", tuple(INTERVALS))
        if last < first:
            raise Invalid("to must not be before from", field="to")
        if (last - first).days >= MAX_DAYS[interval]:
            raise Invalid(f"at most {MAX_DAYS[interval]} days at a time with interval={interval}", field="to")
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        rows = await history(
            self._pool,
            start,
            end,
            interval,
            short_abandon_seconds=self._short_abandon_seconds,
            queue_ids=viewer.queue_ids,
        )
        return interval, rows

    async def set_agent_state(self, request: web.Request) -> web.Response:
        viewer = await self._auth.require_supervisor(request)
        agent_id = _path_uuid(request, "agent_id")
        body = await read_body(request, AgentStateChange)
        await self._actions.set_agent_state(viewer, agent_id, body.state)
        return web.json_response(body.model_dump(mode="json"))

    async def move(self, request: web.Request) -> web.Response:
        viewer = await self._auth.require_supervisor(request)
        conversation_id = _path_uuid(request, "conversation_id")
        body = await read_body(request, MoveWork)
        previous = await self._actions.move(viewer, conversation_id, body.queue)
        moved = Moved(conversation_id=str(conversation_id), queue=body.queue, previous_queue_id=str(previous))
        return web.json_response(moved.model_dump(mode="json"))
