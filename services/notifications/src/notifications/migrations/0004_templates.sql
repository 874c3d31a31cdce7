-- A tenant's own templates, replacing the built-in ones per name and language.
CREATE TABLE templates (
    tenant_id  text        NOT NULL,
    name       text        NOT NULL,
    language   text        NOT NULL,
    subject    text        NOT NULL,
    text       text        NOT NULL,
    html       text        NOT NULL,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name, language)
);
SELECT helpdesk_isolate('templates');
