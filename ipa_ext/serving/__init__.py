"""Real serving on one machine: V2 replica servers with adaptive batching, their supervisor, the pipeline
router and the load generator that the ``local`` backend drives (see docs/local.md)."""
