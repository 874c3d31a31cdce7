-- Personal data (issue 12): each event names the data subject whose key seals its personal
-- fields (helpdesk_contracts.pii), so that erasure and export find a person's events.
ALTER TABLE events ADD COLUMN subject_id text;
CREATE INDEX events_subject ON events (tenant_id, subject_id) WHERE subject_id IS NOT NULL;
