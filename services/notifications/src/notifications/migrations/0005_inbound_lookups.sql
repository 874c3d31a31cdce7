-- The inbound path finds a ticket by the id its reply address names, and a delivery by the
-- id its bounce address names, before it knows their tenant.
CREATE INDEX tickets_by_id ON tickets (ticket_id);
CREATE INDEX deliveries_by_id ON deliveries (delivery_id);
-- Which address an email delivery went to (a SHA-256, never the address): a hard bounce of
-- that very message suppresses exactly it.
ALTER TABLE deliveries ADD COLUMN address_hash text;
