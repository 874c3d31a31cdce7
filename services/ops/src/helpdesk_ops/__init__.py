"""helpdesk: the operators command line."""
