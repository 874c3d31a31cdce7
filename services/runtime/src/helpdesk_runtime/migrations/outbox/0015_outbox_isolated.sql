SELECT helpdesk_isolate('outbox');
