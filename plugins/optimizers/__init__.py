"""Built-in optimizers: ilp, energy-ilp, brute-force, q-learning, InfAdapter and the baseline policies."""
