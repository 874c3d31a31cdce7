"""The services' HTTP APIs, as an admin or supervisor calls them with a bearer token.

The tool holds no secret of its own: the token comes from `--token` or HELPDESK_TOKEN
(minted by the deployment's identity provider, or locally by `python -m <service> token`),
so the service's own authorisation and audit apply to what ops do.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(RuntimeError):
    """A call the service refused, with its status and problem detail."""


def call(
    base_url: str, token: str, method: str, path: str, *, timeout_s: float = 30.0, **kw: Any
) -> Any:
    """One request; the JSON answer, or ApiError with the service's own explanation."""
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        try:
            answer = client.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kw
            )
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {base_url}{path}: {exc}") from exc
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        raise ApiError(f"{method} {path}: {answer.status_code} {detail}")
    return answer.json() if answer.content else None
