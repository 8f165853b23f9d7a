"""The exact engine optimizers share: MILP k-best selection, enumeration, solvers, the candidate pool and baseline policies."""
