"""One-click unsubscribe (RFC 8058) for messages that are not transactional: each carries
`List-Unsubscribe: <https://…/v1/unsubscribe/<token>>` and `List-Unsubscribe-Post:
List-Unsubscribe=One-Click`. The token names the tenant, the person and the category and
is signed, so it opts out exactly that person of exactly that kind of message; opening the
link only shows a page with a button (mail scanners open every link), a POST unsubscribes.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class OptOut:
    tenant_id: str
    person: str
    category: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, b"unsubscribe\x1f" + body.encode(), hashlib.sha256).digest()[:16])


def token_for(secret: bytes, opt_out: OptOut) -> str:
    body = _b64(json.dumps([opt_out.tenant_id, opt_out.person, opt_out.category]).encode())
    return f"{body}.{_mac(secret, body)}"


def read_token(secret: bytes, token: str) -> OptOut | None:
    """What a token opts out, if it is one of ours."""
    body, _, mac = token.partition(".")
    if not body or not hmac.compare_digest(_mac(secret, body), mac):
        return None
    try:
        tenant, person, category = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    return OptOut(str(tenant), str(person), str(category))
