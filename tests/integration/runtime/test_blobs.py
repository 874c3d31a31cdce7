"""The file stores, one contract run against each: PostgreSQL, and S3 over real HTTP (a
local moto server standing in for S3-compatible storage)."""

import os
import socket
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from helpdesk_runtime.blobs import BlobStore, PostgresBlobStore, S3BlobStore, blob_store
from helpdesk_runtime.settings import ServiceSettings

BUCKET = "helpdesk-attachments"


class _Settings(ServiceSettings):
    service_name: str = "tests"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3_settings(endpoint: str) -> _Settings:
    return _Settings(blob_store="s3", s3_bucket=BUCKET, s3_endpoint_url=endpoint,
                     s3_region="us-east-1", s3_access_key_id="test",
                     s3_secret_access_key=SecretStr("test"))  # fmt: skip


@pytest.fixture(params=["postgres", "s3"])
async def store(
    request: pytest.FixtureRequest, pool: asyncpg.Pool, s3_endpoint: str
) -> AsyncIterator[BlobStore]:
    if request.param == "postgres":
        yield PostgresBlobStore(pool)
        return
    settings = _s3_settings(s3_endpoint)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    async with get_session().create_client(  # the bucket, as ops would create it
        "s3", region_name="us-east-1", endpoint_url=s3_endpoint, aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as client:  # fmt: skip
        buckets = await client.list_buckets()
        if BUCKET not in {b["Name"] for b in buckets.get("Buckets", [])}:
            await client.create_bucket(Bucket=BUCKET)
    yield S3BlobStore(settings)


async def test_bytes_come_back_exactly_and_can_be_replaced_and_deleted(store: BlobStore) -> None:
    data = bytes(range(256)) * 1000 + "Счёт №7".encode()
    await store.put("acme/a-1", data, "application/pdf")
    assert await store.get("acme/a-1") == data
    await store.put("acme/a-1", b"v2", "text/plain")
    assert await store.get("acme/a-1") == b"v2"
    await store.delete("acme/a-1")
    assert await store.get("acme/a-1") is None
    await store.delete("acme/a-1")  # twice is fine
    assert await store.get("acme/never-stored") is None


async def test_the_settings_choose_the_store(pool: asyncpg.Pool, s3_endpoint: str) -> None:
    assert isinstance(blob_store(_Settings(), pool), PostgresBlobStore)
    assert isinstance(blob_store(_s3_settings(s3_endpoint), pool), S3BlobStore)
    with pytest.raises(ValueError, match="needs S3_BUCKET"):
        blob_store(_Settings(blob_store="s3"), pool)
