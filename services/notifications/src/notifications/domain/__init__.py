"""What to send to whom, and when to try again: pure rules, no I/O."""
