"""Files (attachments): where their bytes are kept, behind one small interface.

`PostgresBlobStore` keeps them in the service's own database, so a development machine
and `make up` need nothing more; `S3BlobStore` keeps them in S3-compatible storage (AWS S3,
MinIO, Ceph...) for production. `BLOB_STORE` chooses (see `ServiceSettings`). Either is
written before the row that references a file is committed: a file whose upload did not
finish is never referenced (at worst an orphan is left, never a dangling reference).

A key starts with its tenant's id, "<tenant>/<name>": the database's row-level security
(tenancy.py) keeps each tenant to its own files by that prefix.
"""

from typing import TYPE_CHECKING, Protocol

import asyncpg
from aiobotocore.session import ClientCreatorContext, get_session

from helpdesk_runtime.settings import ServiceSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store (or replace) the bytes under `key`."""

    async def get(self, key: str) -> bytes | None:
        """The bytes under `key`; None if there are none."""

    async def delete(self, key: str) -> None:
        """Remove `key` (nothing if it is not there)."""


class PostgresBlobStore:
    """Files in the `blobs` table of the service's database (component BLOBS)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._pool.execute(
            "INSERT INTO blobs (key, content_type, data) VALUES ($1, $2, $3)"
            " ON CONFLICT (key) DO UPDATE SET content_type = excluded.content_type,"
            " data = excluded.data, stored_at = now()",
            key, content_type, data,
        )  # fmt: skip

    async def get(self, key: str) -> bytes | None:
        data: bytes | None = await self._pool.fetchval("SELECT data FROM blobs WHERE key = $1", key)
        return data

    async def delete(self, key: str) -> None:
        await self._pool.execute("DELETE FROM blobs WHERE key = $1", key)


class S3BlobStore:
    """Files in a bucket of S3-compatible storage, through aiobotocore.

    A client per call: attachments are not a hot path, and it needs no life cycle of its
    own (the credentials and endpoint come from the settings)."""

    def __init__(self, settings: ServiceSettings) -> None:
        if not settings.s3_bucket:
            raise ValueError("BLOB_STORE=s3 needs S3_BUCKET")
        self._bucket = settings.s3_bucket
        self._settings = settings
        self._session = get_session()

    def _client(self) -> "ClientCreatorContext[S3Client]":
        s, secret = self._settings, self._settings.s3_secret_access_key
        return self._session.create_client(
            "s3", region_name=s.s3_region, endpoint_url=s.s3_endpoint_url,
            aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
        )  # fmt: skip

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        async with self._client() as s3:
            await s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    async def get(self, key: str) -> bytes | None:
        async with self._client() as s3:
            try:
                found = await s3.get_object(Bucket=self._bucket, Key=key)
            except s3.exceptions.NoSuchKey:
                return None
            async with found["Body"] as body:
                data: bytes = await body.read()
                return data

    async def delete(self, key: str) -> None:
        async with self._client() as s3:
            await s3.delete_object(Bucket=self._bucket, Key=key)


def blob_store(settings: ServiceSettings, pool: asyncpg.Pool) -> BlobStore:
    """The store the settings choose."""
    if settings.blob_store == "s3":
        return S3BlobStore(settings)
    return PostgresBlobStore(pool)
