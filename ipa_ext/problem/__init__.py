"""IPA's adaptation problem: settings, options, evaluation, the stage mix and carbon intensity.

``from ipa_ext.problem import Problem, Settings, Evaluation`` is the import plugins use.
"""

from __future__ import annotations

from .options import Option, queue_delay_s, replicas_needed
from .problem import Problem
from .scoring import Evaluation
from .settings import Settings, within

__all__ = ["Evaluation", "Option", "Problem", "Settings", "queue_delay_s", "replicas_needed", "within"]
