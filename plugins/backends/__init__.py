"""Built-in backends: the simulation (embedded default) and Kubernetes."""
