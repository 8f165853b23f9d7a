"""The MILP solvers the ILP optimizers drive through PuLP: CBC and HiGHS.

* ``cbc``: the CBC binary that ships with PuLP (or a ``cbc`` on ``PATH``), run
  as a child process through PuLP's ``COIN_CMD`` on an MPS file.
* ``highs``: HiGHS in-process through PuLP's ``HiGHS`` solver class, when
  ``highspy`` is installed (the ``highs`` extra). :class:`HighsSolver` subclasses
  it to pass the model in bulk and to re-solve after adding cuts, without
  rebuilding.

``auto`` means the solver named by the ``IPA_EXT_SOLVER`` environment variable
when it is set (tox's solver factor sets it), else HiGHS when available (it
runs in-process and is several times faster on these small models), else CBC.
Both solvers run with a zero MIP gap, so their optima are exact up to the
solvers' feasibility tolerances; callers verify every solution they use.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import pulp

from ..errors import ConfigError, SolverError

SOLVER_NAMES = ("cbc", "highs")
SOLVER_CHOICES = ("auto", *SOLVER_NAMES)
SOLVER_ENV = "IPA_EXT_SOLVER"

INTEGRALITY_TOLERANCE = 1e-9
"""Both solvers accept a binary within this of 0 or 1 (their default, 1e-6, would let
the product chain's continuous variables gain about 1e-6 of the objective)."""

OPTIMAL = "optimal"
INFEASIBLE = "infeasible"


# --------------------------------------------------------------------------- discovery


@functools.lru_cache(maxsize=None)
def highs_available() -> bool:
    """True when highspy is importable (the ``highs`` extra is installed)."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return bool(pulp.HiGHS().available())


@functools.lru_cache(maxsize=None)
def cbc_path() -> str | None:
    """The CBC binary: PuLP's bundled one when executable, else ``cbc`` on PATH."""
    bundled = getattr(pulp.PULP_CBC_CMD, "pulp_cbc_path", None)
    if bundled and os.path.isfile(bundled) and os.access(bundled, os.X_OK):
        return str(bundled)
    return shutil.which("cbc")


def available_solvers() -> tuple[str, ...]:
    """Names of the solvers that can run here, fastest first."""
    out = []
    if highs_available():
        out.append("highs")
    if cbc_path() is not None:
        out.append("cbc")
    return tuple(out)


def choose_solver(requested: str = "auto") -> str:
    """Resolve ``auto`` and check that the solver can run; raises :class:`ConfigError`."""
    if requested not in SOLVER_CHOICES:
        raise ConfigError(
            f"must be one of {', '.join(SOLVER_CHOICES)}, got {requested!r}", where="solver"
        )
    where = "solver"
    if requested == "auto":
        env = os.environ.get(SOLVER_ENV, "").strip().lower()
        if env:
            if env not in SOLVER_NAMES:
                raise ConfigError(
                    f"must be one of {', '.join(SOLVER_NAMES)}, got {env!r}", where=SOLVER_ENV
                )
            requested, where = env, SOLVER_ENV
        else:
            found = available_solvers()
            if not found:
                raise ConfigError(
                    "no MILP solver found: install the 'highs' extra (pip install "
                    "'ipa-ext[highs]') or put a cbc binary on PATH",
                    where="solver",
                )
            return found[0]
    if requested == "highs" and not highs_available():
        raise ConfigError(
            "HiGHS needs highspy: pip install 'ipa-ext[highs]'", where=where
        )
    if requested == "cbc" and cbc_path() is None:
        raise ConfigError(
            "CBC not found: PuLP's bundled cbc is missing and no cbc is on PATH", where=where
        )
    return requested


# --------------------------------------------------------------------------- solving


def constraints_of(lp: pulp.LpProblem) -> dict[str, Any]:
    """A PuLP model's constraints by name, in insertion order."""
    found = getattr(lp, "_constraints", None)  # PuLP 3; PuLP 2 calls it "constraints"
    return found if isinstance(found, dict) else lp.constraints


@dataclass(frozen=True)
class MilpResult:
    """A solve's outcome: ``optimal`` with the variables' values, or ``infeasible``."""

    status: str
    values: tuple[float, ...] = ()


class MilpSolver(ABC):
    """Solves a PuLP model given its variables and constraints in a fixed order."""

    name: str = ""

    def __init__(self, time_limit_s: float | None = None) -> None:
        self.time_limit_s = time_limit_s

    @abstractmethod
    def solve(
        self, lp: pulp.LpProblem, variables: Sequence[pulp.LpVariable]
    ) -> MilpResult:
        """Solve ``lp`` from scratch."""

    def resolve(
        self, lp: pulp.LpProblem, variables: Sequence[pulp.LpVariable]
    ) -> MilpResult:
        """Solve again after constraints were added to ``lp`` (default: from scratch)."""
        return self.solve(lp, variables)

    def _failed(self, what: str) -> SolverError:
        limit = f" (time_limit_s {self.time_limit_s:g})" if self.time_limit_s else ""
        return SolverError(f"{self.name} solver failed: {what}{limit}")


def _status_from_pulp(lp: pulp.LpProblem) -> str | None:
    if lp.status == pulp.LpStatusOptimal and lp.sol_status == pulp.LpSolutionOptimal:
        return OPTIMAL
    if lp.status == pulp.LpStatusInfeasible:
        return INFEASIBLE
    return None


class CbcSolver(MilpSolver):
    """CBC as a child process through PuLP's ``COIN_CMD`` (argument list, no shell).

    No ``threads`` option: with ``-threads 1`` CBC runs its threaded code path,
    and about one solve in two thousand stalled for 10 s when HiGHS had run in
    the same process (measured on this project's benchmark machine).
    """

    name = "cbc"

    def __init__(self, time_limit_s: float | None = None) -> None:
        super().__init__(time_limit_s)
        path = cbc_path()
        if path is None:  # pragma: no cover - guarded by choose_solver
            raise ConfigError("CBC not found", where="solver")
        self._cmd = pulp.COIN_CMD(
            path=path,
            msg=False,
            gapRel=0.0,
            gapAbs=0.0,
            timeLimit=time_limit_s,
            options=[f"integerTolerance {INTEGRALITY_TOLERANCE:g}"],
        )

    def solve(self, lp: pulp.LpProblem, variables: Sequence[pulp.LpVariable]) -> MilpResult:
        try:
            lp.solve(self._cmd)
        except pulp.PulpSolverError as exc:
            raise self._failed(str(exc).strip() or type(exc).__name__) from None
        status = _status_from_pulp(lp)
        if status == INFEASIBLE:
            return MilpResult(INFEASIBLE)
        if status != OPTIMAL:
            raise self._failed(
                f"status {pulp.LpStatus.get(lp.status, lp.status)}, solution "
                f"{pulp.LpSolution.get(lp.sol_status, lp.sol_status)}"
            )
        return MilpResult(OPTIMAL, tuple(float(v.varValue or 0.0) for v in variables))


_HIGHS_BANNER_SHOWN = False


def _new_highs() -> Any:
    """A ``highspy.Highs``; the first one per process is built with stdout silenced.

    highspy prints its version banner on stdout when the first instance is
    constructed, before any option can switch logging off; that would corrupt
    ``--json`` output.
    """
    import highspy

    global _HIGHS_BANNER_SHOWN
    if _HIGHS_BANNER_SHOWN:
        return highspy.Highs()
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no usable fd 1: nothing to protect
        _HIGHS_BANNER_SHOWN = True
        return highspy.Highs()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(devnull)
    finally:
        os.close(saved)
    _HIGHS_BANNER_SHOWN = True
    return h


if hasattr(pulp.HiGHS, "buildSolverModel"):  # highspy importable: PuLP's in-process class

    class _PulpHighs(pulp.HiGHS):  # type: ignore[misc,valid-type]
        """PuLP's in-process HiGHS, passing the model in bulk and re-solving with new rows.

        PuLP's own ``buildSolverModel`` adds columns and rows one call at a
        time and sorts the variables by name on every access; here the model
        goes to HiGHS in three array calls, in the variable order the caller
        fixed, and :meth:`add_new_rows` appends only constraints added since.
        """

        def __init__(self, time_limit_s: float | None) -> None:
            super().__init__(msg=False, gapRel=0.0, gapAbs=0.0, timeLimit=time_limit_s)
            self.variables: Sequence[pulp.LpVariable] = ()

        def createAndConfigureSolver(self, lp: pulp.LpProblem) -> None:
            h = _new_highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("mip_rel_gap", 0.0)
            h.setOptionValue("mip_abs_gap", 0.0)
            h.setOptionValue("mip_feasibility_tolerance", INTEGRALITY_TOLERANCE)
            if self.timeLimit is not None:
                h.setOptionValue("time_limit", float(self.timeLimit))
            lp.solverModel = h

        def buildSolverModel(self, lp: pulp.LpProblem) -> None:
            import numpy as np

            h = lp.solverModel
            variables = self.variables
            for i, v in enumerate(variables):
                v.index = i
            sign = -1.0 if lp.sense == pulp.LpMaximize else 1.0
            n = len(variables)
            cost = np.zeros(n)
            position = {id(v): i for i, v in enumerate(variables)}
            for v, c in lp.objective.items():
                i = position.get(id(v))
                if i is not None:  # PuLP's dummy variable of a constant objective is not ours
                    cost[i] = sign * c
            lower = np.array([-np.inf if v.lowBound is None else v.lowBound for v in variables], dtype=float)
            upper = np.array([np.inf if v.upBound is None else v.upBound for v in variables], dtype=float)
            h.addCols(n, cost, lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
            ints = np.array([i for i, v in enumerate(variables) if v.cat == pulp.LpInteger], dtype=np.int32)
            if len(ints):
                h.changeColsIntegrality(len(ints), ints, np.ones(len(ints), dtype=np.uint8))
            lp._ipa_rows = 0
            lp._ipa_bounds = []
            self.add_new_rows(lp)

        @staticmethod
        def _bounds(c: pulp.LpConstraint) -> tuple[float, float]:
            lb, ub = c.getLb(), c.getUb()
            inf = float("inf")
            return (-inf if lb is None else lb, inf if ub is None else ub)

        def add_new_rows(self, lp: pulp.LpProblem) -> None:
            """Append the constraints added since the last call; push changed right-hand sides."""
            import numpy as np

            constraints = list(constraints_of(lp).values())
            h = lp.solverModel
            for i, c in enumerate(constraints[: lp._ipa_rows]):
                bounds = self._bounds(c)
                if bounds != lp._ipa_bounds[i]:
                    h.changeRowBounds(i, *bounds)
                    lp._ipa_bounds[i] = bounds
            new = constraints[lp._ipa_rows:]
            if not new:
                return
            lows, ups, starts, idx, vals = [], [], [], [], []
            for c in new:
                starts.append(len(idx))
                for v, a in c.items():
                    if a != 0:
                        idx.append(v.index)
                        vals.append(a)
                lb, ub = self._bounds(c)
                lows.append(lb)
                ups.append(ub)
                lp._ipa_bounds.append((lb, ub))
            h.addRows(
                len(new), np.array(lows, dtype=float), np.array(ups, dtype=float),
                len(idx), np.array(starts, dtype=np.int32), np.array(idx, dtype=np.int32),
                np.array(vals, dtype=float),
            )
            lp._ipa_rows += len(new)

        def findSolutionValues(self, lp: pulp.LpProblem) -> tuple[int, int]:
            import highspy

            status = lp.solverModel.getModelStatus()
            S = highspy.HighsModelStatus
            if status == S.kOptimal:
                values = lp.solverModel.getSolution().col_value
                for v in self.variables:
                    v.varValue = values[v.index]
                return pulp.LpStatusOptimal, pulp.LpSolutionOptimal
            if status in (S.kInfeasible, S.kUnboundedOrInfeasible):
                return pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible
            self.last_failure = lp.solverModel.modelStatusToString(status)
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound

        def actualSolve(self, lp: pulp.LpProblem) -> int:
            self.createAndConfigureSolver(lp)
            self.buildSolverModel(lp)
            return self._solve_and_read(lp)

        def _solve_and_read(self, lp: pulp.LpProblem) -> int:
            self.callSolver(lp)
            status, sol_status = self.findSolutionValues(lp)
            lp.assignStatus(status, sol_status)
            return status

        def run_again(self, lp: pulp.LpProblem) -> None:
            self.add_new_rows(lp)
            self._solve_and_read(lp)

        def run_without_presolve(self, lp: pulp.LpProblem) -> None:
            """Solve the same model again with HiGHS's presolve off (then back on).

            HiGHS 1.x's presolve can call a feasible model with many no-good cuts infeasible,
            or fail with "Solve error": a k-best listing then stopped early and said it was
            complete (6 of 62 feasible choices missing in one case). Presolve off solved them."""
            h = lp.solverModel
            h.setOptionValue("presolve", "off")
            try:
                self._solve_and_read(lp)
            finally:
                h.setOptionValue("presolve", "choose")


class HighsSolver(MilpSolver):
    """HiGHS in-process through PuLP; re-solves add only the new rows."""

    name = "highs"

    def __init__(self, time_limit_s: float | None = None) -> None:
        super().__init__(time_limit_s)
        if not highs_available():  # pragma: no cover - guarded by choose_solver
            raise ConfigError("HiGHS needs highspy: pip install 'ipa-ext[highs]'", where="solver")
        self._pulp = _PulpHighs(time_limit_s)

    def _result(self, lp: pulp.LpProblem, variables: Sequence[pulp.LpVariable]) -> MilpResult:
        status = _status_from_pulp(lp)
        if status != OPTIMAL:  # infeasible or failed: presolve may be wrong, so ask again without it
            try:
                self._pulp.run_without_presolve(lp)
            except Exception as exc:
                raise self._failed(f"{type(exc).__name__}: {exc}") from None
            status = _status_from_pulp(lp)
        if status == INFEASIBLE:
            return MilpResult(INFEASIBLE)
        if status != OPTIMAL:
            raise self._failed(getattr(self._pulp, "last_failure", "no solution"))
        return MilpResult(OPTIMAL, tuple(float(v.varValue) for v in variables))

    def solve(self, lp: pulp.LpProblem, variables: Sequence[pulp.LpVariable]) -> MilpResult:
        self._pulp.variables = variables
        try:
            lp.solve(self._pulp)
        except Exception as exc:  # highspy raises plain exceptions on bad input
            raise self._failed(f"{type(exc).__name__}: {exc}") from None
        return self._result(lp, variables)

    def resolve(self, lp: pulp.LpProblem, variables: Sequence[pulp.LpVariable]) -> MilpResult:
        if getattr(lp, "solverModel", None) is None or self._pulp.variables is not variables:
            return self.solve(lp, variables)
        try:
            self._pulp.run_again(lp)
        except Exception as exc:
            raise self._failed(f"{type(exc).__name__}: {exc}") from None
        return self._result(lp, variables)


def make_solver(name: str, time_limit_s: float | None = None) -> MilpSolver:
    """A solver by resolved name (see :func:`choose_solver`)."""
    if name == "highs":
        return HighsSolver(time_limit_s)
    if name == "cbc":
        return CbcSolver(time_limit_s)
    raise ConfigError(f"unknown solver {name!r}", where="solver")
