"""JWT bearer authentication: the verifier, the FastAPI dependencies, stream tokens, service
tokens and the token command every service has."""

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI
from pydantic import SecretStr, ValidationError

from helpdesk_runtime.auth import AuthConfigError, AuthError, Principal, Role, TokenVerifier
from helpdesk_runtime.cli import ServiceCli
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.problems import install_problem_handlers
from helpdesk_runtime.settings import DEV_JWT_SECRET, ServiceSettings
from helpdesk_runtime.tokens import ServiceTokens, StreamTokens


class Settings(ServiceSettings):
    service_name: str = "svc"


def _not_needed(_: Settings) -> Any:
    raise AssertionError("the token command needs neither the runtime nor the app")


cli = ServiceCli[Settings](name="svc", settings=Settings, runtime=_not_needed, app=_not_needed)


def main(argv: list[str]) -> int:
    return cli.main(["token", *argv])


SECRET = "unit-test-secret-" * 4  # 64+ bytes, or PyJWT warns about HS512 keys
OTHER_SECRET = "another-secret-" * 5


@pytest.fixture(autouse=True)
def _no_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: start each test without JWT_* or ENVIRONMENT set."""
    for name in ("ENVIRONMENT", "JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL", "JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    for name in ("JWT_AUDIENCE", "JWT_ALGORITHMS", "JWT_TENANT_CLAIM", "JWT_ROLE_CLAIM"):
        monkeypatch.delenv(name, raising=False)
    for name in ("PARTS", "STREAM_TOKEN_SECRET", "SERVICE_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)


def settings(**overrides: Any) -> Settings:
    return Settings(**{"jwt_secret": SecretStr(SECRET), **overrides})


def token(key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    """A token for agent-7 of acme (an agent); a claim given as None is left out."""
    base: dict[str, Any] = {
        "sub": "agent-7",
        "tenant_id": "acme",
        "role": "agent",
        "name": "Anna",
        "exp": int(time.time()) + 300,
    }
    merged = {k: v for k, v in (base | claims).items() if v is not None}
    return jwt.encode(merged, key, algorithm=algorithm)


def tampered(signed: str) -> str:
    """The token with another payload (role admin) under the original signature."""
    header, _, signature = signed.split(".")
    _, payload, _ = token(role="admin").split(".")
    return f"{header}.{payload}.{signature}"


def unsigned_token() -> str:
    return jwt.encode(
        {"sub": "agent-7", "tenant_id": "acme", "role": "admin", "exp": time.time() + 300},
        "",
        algorithm="none",
    )


async def test_a_valid_token_gives_its_principal() -> None:
    principal = await TokenVerifier(settings()).verify(token())
    assert principal == Principal("acme", "agent-7", Role.AGENT, "Anna")


async def test_expiry_within_the_leeway_is_accepted() -> None:
    principal = await TokenVerifier(settings()).verify(token(exp=int(time.time()) - 10))
    assert principal.agent_id == "agent-7"


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature and claims were checked (by jwt.decode)."""
    checked: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return checked


@pytest.mark.parametrize(
    ("lifetime_s", "cache_s", "remembered_s"),
    [(60, 300, 60 + 30), (3600, 300, 300)],  # until exp (+ the 30 s leeway), or the cache's
)
async def test_a_checked_token_is_remembered_until_it_expires_or_keys_could_change(
    checks: list[str],
    monkeypatch: pytest.MonkeyPatch,
    lifetime_s: int,
    cache_s: float,
    remembered_s: float,
) -> None:
    verifier = TokenVerifier(settings(jwt_jwks_cache_s=cache_s))
    now = time.time()
    good = token(exp=int(now) + lifetime_s)
    first = await verifier.verify(good)
    assert await verifier.verify(good) == first
    assert checks == [good]

    monkeypatch.setattr(time, "time", lambda: now + remembered_s + 1)
    await verifier.verify(good)  # PyJWT keeps the real clock: still valid for it
    assert checks == [good, good]


async def test_a_refused_token_is_checked_again_each_time(checks: list[str]) -> None:
    verifier = TokenVerifier(settings())
    forged = token(key=OTHER_SECRET)
    for _ in range(2):
        with pytest.raises(AuthError):
            await verifier.verify(forged)
    assert checks == [forged, forged]


@pytest.mark.parametrize(
    ("make_token", "overrides", "reason"),
    [
        (lambda: "", {}, "malformed"),
        (lambda: "not.a-jwt", {}, "malformed"),
        (lambda: tampered(token()), {}, "signature is invalid"),
        (lambda: token(exp=int(time.time()) - 3600), {}, "expired"),
        (lambda: token(nbf=int(time.time()) + 3600), {}, "not valid yet"),
        (lambda: token(key=OTHER_SECRET), {}, "signature is invalid"),
        (lambda: token(aud="billing"), {"jwt_audience": "ticketing"}, "another audience"),
        (lambda: token(), {"jwt_audience": "ticketing"}, "no 'aud' claim"),
        (lambda: token(aud="billing"), {}, "another audience"),
        (lambda: token(iss="https://evil"), {"jwt_issuer": "https://idp"}, "issuer"),
        (lambda: token(), {"jwt_issuer": "https://idp"}, "no 'iss' claim"),
        (lambda: token(tenant_id=None), {}, "no 'tenant_id' claim"),
        (lambda: token(role=None), {}, "no 'role' claim"),
        (lambda: token(sub=None), {}, "no 'sub' claim"),
        (lambda: token(exp=None), {}, "no 'exp' claim"),
        (lambda: token(role="root"), {}, "unknown role 'root'"),
        (lambda: token(role=["root", "guest"]), {}, "unknown role"),
        (lambda: token(tenant_id="ACME Inc"), {}, "tenant id must match"),
        (lambda: token(tenant_id=42), {}, "tenant id must match"),
        (lambda: token(sub=" "), {}, "agent id (sub)"),
        (lambda: token(algorithm="HS512"), {}, "algorithm 'HS512' is not accepted"),
        (unsigned_token, {}, "algorithm 'none' is not accepted"),
    ],
)
async def test_an_unacceptable_token_is_refused_with_a_useful_reason(
    make_token: Callable[[], str], overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(AuthError) as refused:
        await TokenVerifier(settings(**overrides)).verify(make_token())
    assert reason in refused.value.reason


async def test_issuer_and_audience_are_accepted_when_they_match() -> None:
    verifier = TokenVerifier(settings(jwt_issuer="https://idp", jwt_audience="ticketing"))
    principal = await verifier.verify(token(iss="https://idp", aud=["ticketing", "sla"]))
    assert principal.tenant_id == "acme"


async def test_claim_names_are_configurable_and_the_highest_listed_role_counts() -> None:
    verifier = TokenVerifier(settings(jwt_tenant_claim="org", jwt_role_claim="roles"))
    signed = token(tenant_id=None, role=None, org="acme", roles=["agent", "admin", "other"])
    assert (await verifier.verify(signed)).role is Role.ADMIN


async def test_a_pem_public_key_verifies_es256_and_refuses_hs256_signed_with_it() -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(Settings(jwt_public_key=pem))
    assert verifier.algorithms == ["RS256", "ES256"]
    principal = await verifier.verify(token(key=private_key, algorithm="ES256", role="admin"))
    assert principal.role is Role.ADMIN
    # One-line PEM with literal "\n" escapes, as env vars often carry it.
    one_line = TokenVerifier(Settings(jwt_public_key=pem.replace("\n", "\\n")))
    assert (await one_line.verify(token(key=private_key, algorithm="ES256"))).role is Role.AGENT
    with pytest.raises(AuthError, match="algorithm 'HS256' is not accepted"):
        await verifier.verify(token(key=OTHER_SECRET))


def test_role_ranking() -> None:
    assert [r.rank for r in Role] == [0, 1, 2]
    assert Role.ADMIN.at_least(Role.SUPERVISOR)
    assert Role.SUPERVISOR.at_least(Role.SUPERVISOR)
    assert Role.SUPERVISOR.at_least(Role.AGENT)
    assert not Role.AGENT.at_least(Role.SUPERVISOR)
    assert not Role.SUPERVISOR.at_least(Role.ADMIN)


def test_a_principal_refuses_an_invalid_tenant() -> None:
    with pytest.raises(ValueError, match="tenant id"):
        Principal("-acme", "agent-7", Role.AGENT)


def test_local_settings_fall_back_to_the_dev_secret_and_others_must_configure_a_key() -> None:
    local = Settings()
    assert local.jwt_secret is not None
    assert local.jwt_secret.get_secret_value() == DEV_JWT_SECRET
    assert Settings(jwt_jwks_url="https://idp/jwks").jwt_secret is None
    with pytest.raises(ValidationError, match="exactly one JWT key source"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="found: JWT_SECRET, JWT_JWKS_URL"):
        Settings(jwt_secret=SecretStr(SECRET), jwt_jwks_url="https://idp/jwks")


def test_settings_read_the_env_and_never_accept_alg_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp/jwks")
    monkeypatch.setenv("STREAM_TOKEN_SECRET", "s" * 40)
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256, PS256")
    assert Settings().jwt_algorithms == ["RS256", "PS256"]
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256,none")
    with pytest.raises(ValidationError, match="never allowed"):
        Settings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_algorithms": ["RS256"]}, "do not fit JWT_SECRET"),
        ({"jwt_secret": None, "jwt_jwks_url": "https://idp", "jwt_algorithms": ["HS256"]}, "fit"),
        ({"jwt_secret": None, "jwt_public_key": "not a key"}, "not a PEM public key"),
    ],
)
def test_settings_that_cannot_work_fail_at_start_up(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(AuthConfigError, match=message):
        TokenVerifier(settings(**overrides))


def app_with_auth(verifier: TokenVerifier) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    auth = HttpAuth(verifier, StreamTokens(settings()), None, ServiceTokens(settings()))
    Caller = Annotated[Principal, Depends(auth.principal)]  # noqa: N806

    @app.get("/me")
    async def me(caller: Caller) -> dict[str, str]:
        return {"tenant": caller.tenant_id, "agent": caller.agent_id, "role": caller.role}

    @app.post("/escalations", dependencies=[Depends(auth.at_least(Role.SUPERVISOR))])
    async def escalate(caller: Caller) -> dict[str, str]:
        return {"by": caller.agent_id}

    @app.get("/stream")
    async def stream(
        caller: Annotated[Principal, Depends(auth.stream_reader)],
    ) -> dict[str, str]:
        return {"agent": caller.agent_id}

    @app.post("/uploads")
    async def upload(
        caller: Annotated[Principal, Depends(auth.principal_or_service("upload"))],
    ) -> dict[str, str]:
        return {"tenant": caller.tenant_id, "agent": caller.agent_id, "role": caller.role}

    app.include_router(auth.stream_token_router())
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = app_with_auth(TokenVerifier(settings()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as http:
        yield http


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_no_token_gets_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}):
        response = await client.get("/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["detail"] == "a bearer token is required"
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_bad_token_gets_401_with_its_reason(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer(token(key=OTHER_SECRET)))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "the token's signature is invalid",
        "instance": "/me",
    }


async def test_a_good_token_gets_through(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer(token()))
    assert response.status_code == 200
    assert response.json() == {"tenant": "acme", "agent": "agent-7", "role": "agent"}


async def test_a_role_without_the_right_gets_403(client: httpx.AsyncClient) -> None:
    response = await client.post("/escalations", headers=bearer(token(role="agent")))
    assert response.status_code == 403
    assert response.json()["detail"] == "this action needs the supervisor role"
    for role in ("supervisor", "admin"):
        response = await client.post("/escalations", headers=bearer(token(role=role)))
        assert response.status_code == 200, response.text
    response = await client.post("/escalations")
    assert response.status_code == 401


def test_openapi_shows_the_bearer_scheme() -> None:
    schema = app_with_auth(TokenVerifier(settings())).openapi()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT whose claims name the tenant, the agent (sub) and the role.",
    }
    assert schema["paths"]["/me"]["get"]["security"] == [{"bearerAuth": []}]


async def test_the_cli_mints_a_token_that_verifies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("JWT_ISSUER", "https://helpdesk.local")
    monkeypatch.setenv("JWT_AUDIENCE", "ticketing")
    argv = ["--tenant", "acme", "--agent", "agent-7", "--role", "supervisor", "--name", "Anna"]
    assert main([*argv, "--ttl", "600"]) == 0
    minted = capsys.readouterr().out.strip()
    principal = await TokenVerifier(Settings()).verify(minted)
    assert principal == Principal("acme", "agent-7", Role.SUPERVISOR, "Anna")
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"], audience="ticketing")
    assert claims["iss"] == "https://helpdesk.local"
    assert claims["exp"] - claims["iat"] == 600


def test_the_cli_explains_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp/jwks")
    assert main(["--tenant", "acme", "--agent", "agent-7"]) == 2
    assert "JWT_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("JWT_JWKS_URL")
    assert main(["--tenant", "acme", "--agent", "agent-7"]) == 2
    assert "exactly one JWT key source" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--tenant", "Not A Tenant", "--agent", "agent-7"])
    assert exited.value.code == 2
    assert "tenant id must match" in capsys.readouterr().err


async def test_a_stream_token_opens_the_stream_and_nothing_else(client: httpx.AsyncClient) -> None:
    minted = await client.post("/v1/stream-tokens", headers=bearer(token()))
    assert minted.status_code == 201, minted.text
    body = minted.json()
    assert body["expires_in"] == Settings().stream_token_ttl_s
    stream_token = body["token"]
    response = await client.get("/stream", params={"access_token": stream_token})
    assert response.status_code == 200
    assert response.json() == {"agent": "agent-7"}
    # Single purpose: not a bearer token for anything else.
    assert (await client.get("/me", headers=bearer(stream_token))).status_code == 401
    # The stream still takes a bearer token; a bearer token in the URL is not a stream token.
    assert (await client.get("/stream", headers=bearer(token()))).status_code == 200
    refused = await client.get("/stream", params={"access_token": token()})
    assert refused.status_code == 401
    assert "not a valid stream token" in refused.json()["detail"]
    assert (await client.post("/v1/stream-tokens")).status_code == 401


def test_a_stream_token_expires_and_is_bound_to_its_service() -> None:
    tokens = StreamTokens(settings())
    principal = Principal("acme", "agent-7", Role.SUPERVISOR, "Anna")
    assert tokens.verify(tokens.mint(principal)) == principal
    with pytest.raises(AuthError, match="expired"):
        tokens.verify(tokens.mint(principal, now=time.time() - 3600))
    other_service = StreamTokens(settings(service_name="sla"))
    with pytest.raises(AuthError, match="not a valid stream token"):
        other_service.verify(tokens.mint(principal))


def test_outside_local_a_stream_secret_is_required_where_the_api_runs() -> None:
    production: dict[str, Any] = {"environment": "production", "jwt_jwks_url": "https://idp/jwks"}
    with pytest.raises(ValidationError, match="STREAM_TOKEN_SECRET"):
        Settings.model_validate(production)
    workers = Settings.model_validate({**production, "parts": "consumers,jobs"})
    assert workers.stream_token_secret is None
    api = Settings.model_validate({**production, "stream_token_secret": "s" * 40})
    assert api.stream_token_secret is not None


async def test_a_service_token_opens_the_routes_of_its_purpose_and_nothing_else(
    client: httpx.AsyncClient,
) -> None:
    notifications = ServiceTokens(settings(service_name="notifications"))
    minted = notifications.mint("svc", "upload", "acme")
    uploaded = await client.post("/uploads", headers=bearer(minted))
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {"tenant": "acme", "agent": "service:notifications", "role": "agent"}
    assert (await client.get("/me", headers=bearer(minted))).status_code == 401
    assert (await client.post("/uploads", headers=bearer(token()))).status_code == 200  # agents
    elsewhere = ServiceTokens(settings(service_token_secret=SecretStr(OTHER_SECRET)))
    refused = {
        "another purpose": notifications.mint("svc", "download", "acme"),
        "another service": notifications.mint("sla", "upload", "acme"),
        "expired": notifications.mint("svc", "upload", "acme", now=time.time() - 3600),
        "another secret": elsewhere.mint("svc", "upload", "acme"),
    }
    for why, service_token in refused.items():
        response = await client.post("/uploads", headers=bearer(service_token))
        assert response.status_code == 401, why
    expired = await client.post("/uploads", headers=bearer(refused["expired"]))
    assert expired.json()["detail"] == "the service token has expired"


def test_outside_local_service_tokens_need_their_secret() -> None:
    production: dict[str, Any] = {"environment": "production", "parts": "consumers,jobs"}
    unset = Settings.model_validate({**production, "jwt_secret": SECRET})
    with pytest.raises(ValueError, match="SERVICE_TOKEN_SECRET"):
        ServiceTokens(unset)
    assert settings().service_token_secret is not None  # locally, a development secret
