-- The last watermark each relay family published (watermarks.py): a new one is never lower,
-- whichever replica computes it and however its view of the table has changed since.
CREATE TABLE published_watermarks (
    relay       text        PRIMARY KEY,
    up_to       timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
