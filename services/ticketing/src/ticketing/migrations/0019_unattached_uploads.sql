-- The jobs delete uploads no ticket took once they are old (unattached.py): the oldest first.
CREATE INDEX attachments_unattached ON attachments (uploaded_at) WHERE ticket_id IS NULL;
