"""Built-in objectives: accuracy, cost, batch, energy and carbon."""
