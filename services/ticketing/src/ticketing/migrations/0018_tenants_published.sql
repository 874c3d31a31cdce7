-- Each change to a tenant is published on ticketing.tenants.v1 (helpdesk_runtime.tenants);
-- the tenants registered before are published once, by the first start.
ALTER TABLE tenants ADD COLUMN published boolean NOT NULL DEFAULT false;
