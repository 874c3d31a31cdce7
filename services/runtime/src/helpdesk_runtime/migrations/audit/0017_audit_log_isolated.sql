SELECT helpdesk_isolate('audit_log');
