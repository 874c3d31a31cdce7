"""The sla domain: pure rules (policies, business calendars, clocks), no I/O."""
