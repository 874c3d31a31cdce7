-- Files kept in the service's own database (blobs.PostgresBlobStore), the default store:
-- nothing more to run. Production may keep them in S3-compatible storage instead.
CREATE TABLE blobs (
    key           text        PRIMARY KEY,
    content_type  text        NOT NULL,
    data          bytea       NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT now()
);
-- Files are read whole and never compressed by PostgreSQL (most are compressed already).
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
