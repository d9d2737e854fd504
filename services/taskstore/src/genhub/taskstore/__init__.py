"""task-store: the only owner of MongoDB; the task state machine, search and status events."""
