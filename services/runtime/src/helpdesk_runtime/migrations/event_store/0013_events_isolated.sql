SELECT helpdesk_isolate('events');
