-- Row-level security on every tenant table (helpdesk_runtime.tenancy). The registry of
-- tenants and publishers is not one: it is read to decide whether a caller is a tenant.
SELECT helpdesk_isolate(t) FROM unnest(ARRAY[
    'agent_groups', 'attachments', 'canned_responses', 'custom_fields', 'customer_identities',
    'customers', 'erasures', 'group_members', 'organisation_domains', 'organisations',
    'sla_clocks', 'ticket_list', 'ticket_threads'
]::regclass[]) AS t;
