-- Each tenant's custom fields and their types (tenant configuration, kept by admins).
CREATE TABLE custom_fields (
    tenant_id   text  NOT NULL,
    key         text  NOT NULL,
    definition  jsonb NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
