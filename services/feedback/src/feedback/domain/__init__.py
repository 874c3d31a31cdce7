"""The feedback service's rules, free of I/O."""
