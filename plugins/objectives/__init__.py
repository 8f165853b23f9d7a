"""Built-in objectives: accuracy, cost, batch, power (alias energy) and carbon."""
