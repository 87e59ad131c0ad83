"""Settings and the wiring of stores: what a process needs to start."""
