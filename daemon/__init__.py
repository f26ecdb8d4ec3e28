"""The coordinator: gRPC servicers, single-flight, job queue and leases, state."""
