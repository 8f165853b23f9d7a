"""The exact engine optimizers share: the selection model of ilp and energy-ilp (``milp.py``), MILP
k-best selection, enumeration, solvers, the candidate pool and baseline policies."""
