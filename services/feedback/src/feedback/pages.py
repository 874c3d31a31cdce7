"""The customer's survey page: server-rendered, works without JavaScript, in the customer's
language. No sign-in: the link's signed token says which invitation it answers.

Opening a link never records anything (mail systems' scanners open every link): `?score=n`
only preselects that answer, and only the customer's submit records it. Each page view
carries a fresh `submission` id, and the answer's id is derived from it: the same form sent
twice is refused, while answering again from the link replaces the earlier answer.
"""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4, uuid5

from fastapi import APIRouter, Form, Header, Path, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from feedback import store
from feedback.domain.surveys import CsatScale, SurveySettings, scale
from feedback.handlers import PRODUCER, FeedbackHandlers
from feedback.page_text import Words, language_of
from feedback.tokens import SurveyLink
from helpdesk_contracts import EventEnvelope, FeedbackReceived, SurveyKind
from helpdesk_runtime import outbox, tenancy
from helpdesk_runtime.db import Connection
from helpdesk_runtime.problems import problem_responses

MAX_COMMENT = 5000
SOURCE = "survey-page"
"""`FeedbackReceived.source` of the answers given on our page."""

Token = Annotated[str, Path(max_length=500, pattern=r"^[A-Za-z0-9_.-]+$")]

_PAGES = Environment(
    loader=PackageLoader("feedback", "templates"), autoescape=True, auto_reload=False
)


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {}}}


_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _page("The survey (GET), or the thanks for an answer recorded (POST)"),
    404: _page("The link is not one of ours: forged, altered, or of another deployment"),
    409: _page("This very form was sent before: the answer is already recorded"),
    410: _page("The survey has closed"),
    422: {
        "description": "The answer is not one the survey offers (the page again, with what"
        " to fix), or the request is not the page's form (a problem)",
        "content": {"text/html": {}, **problem_responses(422)[422]["content"]},
    },
    429: _page("Too many requests from this address: try again in a minute"),
}


@dataclass(frozen=True)
class PageDeps:
    """Wired once, in bootstrap."""

    transaction: Callable[[], AbstractAsyncContextManager[Connection]]
    connection: Callable[[], AbstractAsyncContextManager[Connection]]
    clock: Callable[[], datetime]
    handlers: FeedbackHandlers
    default_language: str
    views_per_minute: int
    posts_per_minute: int


@dataclass(frozen=True)
class Option:
    score: int
    label: str
    selected: bool


class RefusedError(Exception):
    """A page other than the form: the link is invalid or expired, the form a duplicate."""

    def __init__(self, status: int, key: str, **values: Any) -> None:
        self.status, self.key, self.values = status, key, values


def router(deps: PageDeps) -> APIRouter:
    r = APIRouter(prefix="/surveys", tags=["survey page"])
    limiter = MovingWindowRateLimiter(MemoryStorage())
    views = RateLimitItemPerMinute(deps.views_per_minute)
    posts = RateLimitItemPerMinute(deps.posts_per_minute)

    def render(
        words: Words, status: int, title_key: str, message: str | None = None,
        error: bool = False, form: dict[str, Any] | None = None,
    ) -> HTMLResponse:  # fmt: skip
        html = _PAGES.get_template("pages/survey.html").render(
            words=words, title=words(title_key), message=message, error=error, form=form
        )
        return HTMLResponse(html, status_code=status, headers={
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
                                       " form-action 'self'; frame-ancestors 'none'",
        })  # fmt: skip

    async def allowed(request: Request, limit: Any) -> bool:
        client = request.client.host if request.client else "unknown"
        return bool(await limiter.hit(limit, "survey", client))

    async def invitation(conn: Connection, link: SurveyLink) -> Any:
        found = await store.invitation(conn, link.tenant_id, link.survey_id)
        if found is None:
            raise RefusedError(404, "invalid")  # signed by us, but not this deployment's survey
        if deps.clock() >= found["expires_at"]:
            raise RefusedError(410, "expired", date=found["expires_at"].date().isoformat())
        return found

    def read(token: str) -> SurveyLink:
        link = deps.handlers.links.read(token)
        if link is None:
            raise RefusedError(404, "invalid")
        if deps.clock() >= link.expires_at:
            raise RefusedError(410, "expired", date=link.expires_at.date().isoformat())
        return link

    def refused(words: Words, error: RefusedError) -> HTMLResponse:
        return render(words, error.status, f"{error.key}.title", words(error.key, **error.values))

    def form(token: str, found: Any, settings: SurveySettings, words: Words, score: int | None,
             reason: str | None = None, comment: str = "",
             previous: Any = None) -> dict[str, Any]:  # fmt: skip
        kind = SurveyKind(found["survey"])
        binary = kind is SurveyKind.CSAT and settings.csat_scale is CsatScale.BINARY
        answers = scale(kind, settings)
        if previous is not None:  # the earlier answer, unless the link chose another score
            score = previous["score"] if score is None else score
            reason = reason or previous["reason"]
            comment = comment or previous["comment"] or ""
        return {
            "action": f"/surveys/{token}", "submission": uuid4().hex,
            "number": found["number"], "question": words(f"question.{kind.value}"),
            "options": [Option(s, words.option(kind, binary, s, answers), s == score)
                        for s in answers],
            "numbers": kind is SurveyKind.NPS, "reasons": settings.reasons, "reason": reason,
            "comment": comment, "max_comment": MAX_COMMENT,
            "previous": words("previous", date=previous["answered_at"].date().isoformat())
            if previous is not None else None,
        }  # fmt: skip

    async def context(conn: Connection, link: SurveyLink) -> tuple[Any, SurveySettings, Any]:
        found = await invitation(conn, link)
        settings = (await store.settings(conn, [link.tenant_id]))[link.tenant_id]
        previous = None
        if found["answer_id"] is not None:
            previous = await conn.fetchrow(
                "SELECT score, reason, comment, answered_at FROM answers"
                " WHERE tenant_id = $1 AND feedback_id = $2",
                link.tenant_id, found["answer_id"],
            )  # fmt: skip
        return found, settings, previous

    def words_for(found: Any, accept_language: str | None) -> Words:
        language = found["language"] if found is not None else None
        return Words(language_of(language, accept_language, deps.default_language))

    @r.get("/{token}", response_class=HTMLResponse, responses=_PAGE_RESPONSES)
    async def page(
        request: Request, token: Token,
        score: Annotated[int | None, Query(ge=0, le=10)] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> HTMLResponse:  # fmt: skip
        """The survey: `score` preselects an answer (a one-click link); nothing is recorded."""
        words = words_for(None, accept_language)
        if not await allowed(request, views):
            return render(words, 429, "limited.title", words("limited"), error=True)
        try:
            link = read(token)
            with tenancy.scoped_to([link.tenant_id]):
                async with deps.connection() as conn:
                    found, settings, previous = await context(conn, link)
        except RefusedError as error:
            return refused(words, error)
        words = words_for(found, accept_language)
        shown = form(token, found, settings, words, score, previous=previous)
        return render(words, 200, "title", form=shown)

    @r.post("/{token}", response_class=HTMLResponse, responses=_PAGE_RESPONSES)
    async def answer(
        request: Request, token: Token,
        submission: Annotated[str, Form(pattern=r"^[0-9a-f]{32}$")],
        score: Annotated[str | None, Form(max_length=3)] = None,
        reason: Annotated[str | None, Form(max_length=50)] = None,
        comment: Annotated[str | None, Form(max_length=MAX_COMMENT * 4)] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> HTMLResponse:  # fmt: skip
        """Record the customer's answer (replacing an earlier one to the same survey)."""
        words = words_for(None, accept_language)
        if not await allowed(request, posts):
            return render(words, 429, "limited.title", words("limited"), error=True)
        try:
            link = read(token)
            with tenancy.scoped_to([link.tenant_id]):
                async with deps.transaction() as conn:
                    found, settings, _ = await context(conn, link)
                    words = words_for(found, accept_language)
                    kind = SurveyKind(found["survey"])
                    problem = _problem(kind, settings, score, reason, comment or "")
                    if problem is not None:
                        key, values = problem
                        chosen = int(score) if score and score.isdigit() else None
                        return render(words, 422, "title", words(key, **values), error=True,
                                      form=form(token, found, settings, words, chosen,
                                                reason or None, comment or ""))  # fmt: skip
                    await _record(conn, deps, link, found, kind, int(score or 0), reason or None,
                                  (comment or "").strip() or None,
                                  uuid5(link.survey_id, submission))  # fmt: skip
        except RefusedError as error:
            return refused(words, error)
        return render(words, 200, "thanks.title",
                      words("thanks", date=found["expires_at"].date().isoformat()))  # fmt: skip

    return r


def _problem(kind: SurveyKind, settings: SurveySettings, score: str | None, reason: str | None,
             comment: str) -> tuple[str, dict[str, Any]] | None:  # fmt: skip
    if not score or not score.isdigit() or int(score) not in scale(kind, settings):
        return "error.score", {}
    if reason and reason not in settings.reasons:
        return "error.reason", {}
    if len(comment) > MAX_COMMENT:
        return "error.comment", {"max": MAX_COMMENT}
    return None


async def _record(
    conn: Connection, deps: PageDeps, link: SurveyLink, found: Any, kind: SurveyKind, score: int,
    reason: str | None, comment: str | None, feedback_id: UUID,
) -> None:  # fmt: skip
    """Record the answer and publish it, in the page's transaction; the invitation's row
    lock (FOR UPDATE) orders two answers sent at once."""
    # What the locked row says is replaced: another answer may have come since it was read.
    replaces = await conn.fetchval(
        "SELECT answer_id FROM invitations WHERE tenant_id = $1 AND survey_id = $2 FOR UPDATE",
        link.tenant_id, link.survey_id,
    )  # fmt: skip
    if await store.answers(conn, [(link.tenant_id, feedback_id)]):
        raise RefusedError(409, "duplicate")
    answer = FeedbackReceived(
        feedback_id=feedback_id, ticket_id=found["ticket_id"], customer_id=found["customer_id"],
        survey=kind, score=score, comment=comment, agent_id=found["agent_id"], source=SOURCE,
        survey_id=link.survey_id, reason=reason, replaces=replaces,
    )  # fmt: skip
    envelope = EventEnvelope.new(answer, tenant_id=link.tenant_id, producer=PRODUCER,
                                 occurred_at=deps.clock())  # fmt: skip
    refused = await deps.handlers.answers(conn, [envelope])
    assert not refused, refused  # the page checked what the handler checks
    await outbox.put(conn, [envelope])
