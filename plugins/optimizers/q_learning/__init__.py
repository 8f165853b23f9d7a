"""The ``q-learning`` optimizer: the paper's Algorithm 1 (tabular Q-learning, ε-greedy) deciding
IPA's problem at each adaptation step. The design (reward, state encoding, stopping, file
format) is in docs/q-learning.md.
"""

from __future__ import annotations

from ipa_ext import hookimpl

from .algorithm import (
    STAY,
    Environment,
    EpisodeLog,
    LearningParams,
    QTable,
    State,
    StopRule,
    greedy_path,
    next_epsilon,
    q_update,
    train,
)
from .encoding import LOCAL_ACTIONS, Layout, StageAxes, build_layout, layout_from_dict
from .environment import PipelineEnv
from .feasibility import feasibility_anchor
from .optimizer import QLearningOptimizer
from .tables import FILE_FORMAT, FILE_VERSION, Policy, read_tables, write_tables

__all__ = [
    "FILE_FORMAT", "FILE_VERSION", "LOCAL_ACTIONS", "STAY", "Environment", "EpisodeLog", "Layout",
    "LearningParams", "PipelineEnv", "Policy", "QLearningOptimizer", "QTable", "StageAxes", "State",
    "StopRule", "build_layout", "feasibility_anchor", "greedy_path", "layout_from_dict", "next_epsilon",
    "q_update", "read_tables", "register_optimizers", "train", "write_tables",
]


@hookimpl
def register_optimizers(register) -> None:
    register("q-learning", QLearningOptimizer)
