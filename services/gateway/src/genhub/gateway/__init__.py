"""gateway: the public gRPC API; validates, stores and publishes tasks."""
