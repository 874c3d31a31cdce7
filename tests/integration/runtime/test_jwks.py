"""Tokens verified against a real JWKS endpoint (a local HTTP server; no Kafka or PostgreSQL)."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from helpdesk_runtime.auth import AuthError, KeysUnavailableError, Principal, Role, TokenVerifier

from support.runtime import service_settings

KID = "key-2026-11"


def jwks_settings(url: str) -> Any:
    return service_settings(
        "postgresql://unused", "unused:9092", environment="test", jwt_jwks_url=url, parts="jobs"
    )


@dataclass
class Jwks:
    url: str
    private_key: rsa.RSAPrivateKey
    requests: list[str] = field(default_factory=list)

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(jwks_settings(self.url))


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    """A JWKS endpoint on a free port of 127.0.0.1, publishing one fresh RSA key."""
    private_key = new_key()
    public_jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    body = json.dumps({"keys": [{**public_jwk, "kid": KID, "alg": "RS256", "use": "sig"}]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = Jwks(f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", private_key)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()
    thread.join()


def rs256_token(key: rsa.RSAPrivateKey, kid: str | None = KID, **claims: Any) -> str:
    payload = {
        "sub": "agent-7",
        "tenant_id": "acme",
        "role": "supervisor",
        "exp": int(time.time()) + 300,
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload | claims, key, algorithm="RS256", headers=headers)


async def test_a_token_signed_by_the_published_key_verifies_and_the_keys_are_cached(
    jwks: Jwks,
) -> None:
    verifier = jwks.verifier()
    before = len(jwks.requests)
    for _ in range(3):
        principal = await verifier.verify(rs256_token(jwks.private_key, name="Anna"))
        assert principal == Principal("acme", "agent-7", Role.SUPERVISOR, "Anna")
    assert len(jwks.requests) == before + 1


async def test_a_token_signed_by_another_key_is_refused(jwks: Jwks) -> None:
    forged = rs256_token(new_key(), role="admin")
    with pytest.raises(AuthError, match="signature is invalid"):
        await jwks.verifier().verify(forged)


@pytest.mark.parametrize(
    ("kid", "reason"),
    [("unknown-key", "no published signing key matches"), (None, "names no signing key")],
)
async def test_a_token_without_a_published_kid_is_refused(
    jwks: Jwks, kid: str | None, reason: str
) -> None:
    with pytest.raises(AuthError, match=reason):
        await jwks.verifier().verify(rs256_token(jwks.private_key, kid=kid))


async def test_an_unreachable_jwks_endpoint_is_not_blamed_on_the_token() -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = jwks_settings(f"http://127.0.0.1:{port}/jwks.json")
    with pytest.raises(KeysUnavailableError):
        await TokenVerifier(settings).verify(rs256_token(new_key()))
