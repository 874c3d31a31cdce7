-- The W3C trace context of what caused each event (a request or a consumed event); the
-- relay sends it as the `traceparent` Kafka header. Null for events stored before.
ALTER TABLE events ADD COLUMN traceparent text;
