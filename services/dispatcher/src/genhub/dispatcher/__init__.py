"""dispatcher: the worker runtime; consume -> route -> call -> record -> ack."""
