"""What the routes need, and the one place where handler errors become HTTP answers."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Header, HTTPException, status
from pydantic import ValidationError

from helpdesk_runtime.blobs import BlobStore
from helpdesk_runtime.db import Connection
from helpdesk_runtime.eventstore import ConcurrencyError
from helpdesk_runtime.feed import AppendFeed
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.personal_data import SubjectKeys
from ticketing.directory import DomainTakenError, RecordExistsError, RecordNotFoundError
from ticketing.domain import TicketError
from ticketing.domain.attachments import AttachmentPolicy, AttachmentRefusedError
from ticketing.domain.directory import DirectoryError, IdentityTakenError, TermsReservedError
from ticketing.handlers import StaleVersionError, TicketNotFoundError
from ticketing.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class ApiDeps:
    """Wired once, in bootstrap: routes open a transaction (commands) or a connection
    (queries) and never build an adapter themselves."""

    transaction: Callable[[], AbstractAsyncContextManager[UnitOfWork]]
    connection: Callable[[], AbstractAsyncContextManager[Connection]]
    clock: Callable[[], datetime]
    auth: HttpAuth
    feed: Callable[[], AppendFeed]
    blobs: Callable[[], BlobStore]
    attachments: AttachmentPolicy
    keys: SubjectKeys
    """Open the personal data of the events a route shows as they are stored (the stream)."""


@asynccontextmanager
async def http_errors() -> AsyncIterator[None]:
    """Turn the handlers' refusals into 404 / 409 / 422 with the reason as `detail`."""
    try:
        yield
    except (TicketNotFoundError, RecordNotFoundError) as exc:  # also another tenant's
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except TermsReservedError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except (RecordExistsError, IdentityTakenError, DomainTakenError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except StaleVersionError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, str(exc), headers={"ETag": f'"{exc.current}"'}
        ) from exc
    except ConcurrencyError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "it changed at the same moment; retry"
        ) from exc
    except AttachmentRefusedError as exc:
        raise HTTPException(_REFUSED[exc.reason], str(exc)) from exc
    except (TicketError, DirectoryError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except ValidationError as exc:  # input the request model let through but an event refuses
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from exc


_REFUSED = {
    "too_large": status.HTTP_413_CONTENT_TOO_LARGE,
    "unsupported_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "invalid": status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            description='The ticket version the change was decided on (its ETag, e.g. "7");'
            " a stale version is refused with 409"
        ),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, 'If-Match must be a ticket version such as "7"'
        ) from exc
