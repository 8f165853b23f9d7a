"""Kubernetes value formats ipa-ext reads and writes: CPU quantities and label selectors.

Quantities follow the API's grammar (``2``, ``1.5``, ``500m``, ``2e3m``, ``1k``);
selectors the ``kubectl -l`` grammar (``a=b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``,
``a``, ``!a``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from ..config.lists import split_top_level

_QUANTITY_RE = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?P<suffix>[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$"
)
_DECIMAL_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


def parse_cpu(value: Any) -> float:
    """A CPU quantity (``"500m"``, ``"2"``, ``2``) in cores; ValueError when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"not a CPU quantity: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"negative CPU quantity: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a CPU quantity: {value!r}")
    m = _QUANTITY_RE.match(value.strip())
    if not m:
        raise ValueError(f"not a CPU quantity: {value!r}")
    try:
        num = Decimal(m.group("num"))
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"not a CPU quantity: {value!r}") from None
    suffix = m.group("suffix") or ""
    if suffix in _BINARY_SUFFIX:
        out = num * (Decimal(2) ** _BINARY_SUFFIX[suffix])
    elif suffix[:1] in ("e", "E"):
        out = num.scaleb(int(suffix[1:]))
    else:
        out = num.scaleb(_DECIMAL_SUFFIX[suffix])
    if out < 0:
        raise ValueError(f"negative CPU quantity: {value!r}")
    return float(out)


def format_cpu(cores: float) -> str:
    """Cores as the canonical quantity the API server would store: ``"2"`` or ``"1500m"``.

    ValueError for negative values and for values finer than one millicore.
    """
    if cores < 0:
        raise ValueError(f"negative CPU: {cores!r}")
    milli = Decimal(repr(float(cores))) * 1000
    if milli != milli.to_integral_value():
        raise ValueError(f"CPU {cores!r} is finer than 1m (one millicore)")
    m = int(milli)
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"


# --------------------------------------------------------------------------- selectors

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op == "=":
            return has and v == self.values[0]
        if self.op == "!=":
            return not has or v != self.values[0]
        if self.op == "in":
            return has and v in self.values
        if self.op == "notin":
            return not has or v not in self.values
        if self.op == "exists":
            return has
        return not has  # "!exists"

    def render(self) -> str:
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{self.values[0]}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return self.key if self.op == "exists" else f"!{self.key}"


@dataclass(frozen=True)
class Selector:
    """A parsed label selector: all requirements must hold (an empty one matches everything)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def render(self) -> str:
        return ",".join(r.render() for r in self.requirements)

    def __and__(self, other: "Selector") -> "Selector":
        return Selector(self.requirements + other.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def parse_selector(text: str) -> Selector:
    """Parse ``kubectl -l`` syntax; ValueError naming the clause that is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"a label selector must be a string, got {text!r}")
    if not text.strip():
        return Selector()
    reqs = []
    for clause in split_top_level(text, nest="()"):
        if m := _SET_RE.match(clause):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            if not values or not all(re.fullmatch(_VALUE, v) for v in values):
                raise ValueError(f"bad values in selector clause {clause.strip()!r}")
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif m := _EQ_RE.match(clause):
            op = "=" if m.group(2) in ("=", "==") else "!="
            reqs.append(Requirement(m.group(1), op, (m.group(3),)))
        elif m := _EXISTS_RE.match(clause):
            reqs.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise ValueError(f"bad label selector clause {clause.strip()!r}")
    return Selector(tuple(reqs))


def selector_from_label_selector(obj: Mapping[str, Any] | None) -> Selector:
    """A ``metav1.LabelSelector`` (``matchLabels`` / ``matchExpressions``) as a :class:`Selector`."""
    if not obj:
        return Selector()
    reqs = [Requirement(str(k), "=", (str(v),)) for k, v in (obj.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in obj.get("matchExpressions") or []:
        op = ops.get(expr.get("operator"))
        if op is None:
            raise ValueError(f"unknown matchExpressions operator {expr.get('operator')!r}")
        reqs.append(Requirement(str(expr["key"]), op, tuple(str(v) for v in expr.get("values") or ())))
    return Selector(tuple(reqs))
