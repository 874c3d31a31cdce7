"""A live stream of the tenant's ticket changes (server-sent events), resumable.

Each event's SSE `id` is its position in the event log. Positions become visible in commit
order (the event store serialises appends), so tailing by position never skips a change,
and a client that reconnects with `Last-Event-ID` misses nothing.
"""

import time
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from helpdesk_runtime.auth import Principal
from helpdesk_runtime.event_log import latest_position, read_after
from helpdesk_runtime.eventstore import opened
from helpdesk_runtime.problems import problem_responses
from ticketing.api.deps import ApiDeps

HEARTBEAT_S = 15.0
BATCH = 500


def stream_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(tags=["stream"])
    Reader = Annotated[Principal, Depends(deps.auth.stream_reader)]  # noqa: N806

    async def _after(caller: Principal, after: int | None, last_event_id: str | None) -> int:
        if last_event_id is not None:
            try:
                return int(last_event_id)
            except ValueError as exc:
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be an event position"
                ) from exc
        if after is not None:
            return after
        async with deps.connection() as conn:  # from now on
            return await latest_position(conn, caller.tenant_id)

    @api.get(
        "/v1/stream",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "SSE events"},
            **problem_responses(400),
        },
    )
    async def stream(
        caller: Reader,
        request: Request,
        ticket_id: Annotated[UUID | None, Query(description="Only this ticket's changes")] = None,
        after: Annotated[int | None, Query(ge=0, description="Replay from this position")] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Every change to the caller's tenant's tickets and customer directory as it happens
        (`data` is the envelope)."""
        position = await _after(caller, after, last_event_id)

        async def events() -> AsyncIterator[str]:
            nonlocal position
            yield "retry: 3000\n\n"
            quiet_since = time.monotonic()
            while not await request.is_disconnected():
                seen = deps.feed().generation
                async with deps.connection() as conn:
                    rows = await read_after(
                        conn, position, BATCH, tenant_id=caller.tenant_id, stream_id=ticket_id
                    )
                    # Stored sealed: agents see the personal data (erased where it was).
                    envelopes = await opened(conn, rows, deps.keys)
                for row, envelope in zip(rows, envelopes, strict=True):
                    position = row["position"]
                    data = envelope.to_json().decode()
                    yield f"id: {position}\nevent: {row['event_type']}\ndata: {data}\n\n"
                if rows:
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since >= HEARTBEAT_S:
                    yield ": keep-alive\n\n"  # keeps proxies from closing an idle stream
                    quiet_since = time.monotonic()
                await deps.feed().wait(1.0, after=seen)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return api
