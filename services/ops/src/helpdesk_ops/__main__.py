"""`python -m helpdesk_ops`: the same as the `helpdesk` console script."""

from helpdesk_ops.cli import main

main()
