SELECT helpdesk_isolate('inbox');
