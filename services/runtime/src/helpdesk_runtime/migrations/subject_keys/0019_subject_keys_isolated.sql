SELECT helpdesk_isolate('subject_keys');
SELECT helpdesk_isolate('destroyed_subject_keys');
