"""What every GenHub service shares: settings, errors, logging, the gRPC server skeleton, the
RabbitMQ topology, task-store clients, status events and secrets. Import the modules by name
(``genhub.common.topology``, ``genhub.common.errors``, ...)."""
