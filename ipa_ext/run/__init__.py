"""Assembling runs from a config (prepare, execute, summarise) and comparing policies over workloads."""
