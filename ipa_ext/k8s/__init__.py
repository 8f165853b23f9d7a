"""The Kubernetes layer: pipeline stages mapped to workloads, read and patched through the
official ``kubernetes`` client.

:mod:`.settings` validates the ``kubernetes:`` config section, :mod:`.deployments` reads a
stage's configuration out of a Deployment or SeldonDeployment and builds the patch that
changes it, :mod:`.cluster` talks to the API server (retries, per-stage results, dry run).
"""

from .cluster import ApplyReport, PipelineCluster, StageResult
from .settings import ClusterSettings, RetryPolicy, StageMapping, parse_settings

__all__ = [
    "ApplyReport",
    "ClusterSettings",
    "PipelineCluster",
    "RetryPolicy",
    "StageMapping",
    "StageResult",
    "parse_settings",
]
