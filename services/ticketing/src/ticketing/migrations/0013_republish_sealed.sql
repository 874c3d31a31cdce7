-- Contracts 2.0.0: ticket events go to ticketing.tickets.v2 with their personal data sealed
-- (the runtime seals what the log held plain right after these migrations). The relay
-- starts again from the first event, so v2 carries the whole history; consumers that read
-- v1 already skip what they have seen (they deduplicate by event id). A fresh database has
-- no checkpoint yet: nothing to do.
UPDATE outbox_checkpoints SET position = 0, updated_at = now()
WHERE relay = 'kafka' OR starts_with(relay, 'kafka#');
