-- Ticket events consumed from ticketing.tickets.v1 carried personal data in plain text;
-- ticketing.tickets.v2 carries it sealed, and this service holds no key to open it (it
-- needs none: clocks read statuses, priorities and times). Blank what v1 left in the input
-- log, so that erasing a person leaves nothing readable here either.
CREATE FUNCTION pg_temp.erased_files(attachments jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce(jsonb_agg(a || '{"filename": "[erased]"}'), '[]')
    FROM jsonb_array_elements(coalesce(attachments, '[]')) AS a
$$;

UPDATE ticket_events SET envelope = jsonb_set(envelope, '{payload}', envelope->'payload'
    || jsonb_build_object('subject', '[erased]', 'description', '[erased]',
        'attachments', pg_temp.erased_files(envelope->'payload'->'attachments'),
        'requester', (envelope->'payload'->'requester') || (
            SELECT coalesce(jsonb_object_agg(field, '[erased]'), '{}')
            FROM jsonb_each(envelope->'payload'->'requester') AS r(field, value)
            WHERE field IN ('name', 'email', 'phone') AND value <> 'null')))
WHERE event_type = 'TicketOpened' AND envelope->'payload'->>'subject' NOT LIKE 'pii:v1:%';

UPDATE ticket_events SET envelope = jsonb_set(envelope, '{payload}', envelope->'payload'
    || jsonb_build_object('body', '[erased]',
        'attachments', pg_temp.erased_files(envelope->'payload'->'attachments')))
WHERE event_type IN ('ResponseSent', 'CustomerReplied', 'InternalNoteAdded')
  AND envelope->'payload'->>'body' NOT LIKE 'pii:v1:%';
DROP FUNCTION pg_temp.erased_files(jsonb);
