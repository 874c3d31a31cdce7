-- Row-level security on every tenant table (helpdesk_runtime.tenancy).
SELECT helpdesk_isolate(t) FROM unnest(ARRAY[
    'calendars', 'clocks', 'policies', 'sla_tickets', 'tenant_revisions', 'tenant_settings',
    'ticket_events'
]::regclass[]) AS t;
