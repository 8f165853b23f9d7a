"""Reading load from monitoring systems: the Prometheus HTTP API."""
