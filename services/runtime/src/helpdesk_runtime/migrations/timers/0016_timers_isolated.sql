SELECT helpdesk_isolate('timers');
