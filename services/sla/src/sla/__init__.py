"""The SLA service: policies, business calendars, and every ticket's clocks, warnings,
breaches and verdicts, computed from the ticket events it consumes (see README.md)."""
