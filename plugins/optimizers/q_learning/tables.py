"""The Q-table file (format ``ipa-ext-q-table``, version 1): writing it atomically and reading it
back with every field checked (docs/q-learning.md, "File format")."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ipa_ext.config.numeric import NumberError, as_number
from ipa_ext.config.show import shown
from ipa_ext.errors import InputError

from .algorithm import QTable
from .encoding import Layout, layout_from_dict

FILE_FORMAT = "ipa-ext-q-table"
FILE_VERSION = 1


@dataclass
class Policy:
    """The Q-tables of one layout and reward, by rate."""

    layout: Layout
    layout_dict: dict[str, Any]
    reward: dict[str, Any]
    tables: dict[float, QTable] = field(default_factory=dict)

    def nearest(self, rate_rps: float) -> QTable | None:
        if not self.tables:
            return None
        r = min(self.tables, key=lambda x: (abs(x - rate_rps), x))
        return self.tables[r]


def _is_number(value: Any) -> bool:
    """A finite number of magnitude at most 1e200 (what a saved table's numbers must be: updates
    on larger ones could overflow)."""
    try:
        as_number(value, minimum=-1e200, maximum=1e200)
    except NumberError:
        return False
    return True


def write_tables(path: Path, policies: Sequence[Policy]) -> None:
    """Write ``policies``' Q-tables to ``path`` (JSON, format version 1), atomically."""
    doc = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "policies": [
            {
                "layout": p.layout_dict,
                "reward": p.reward,
                "actions": p.layout.action_names,
                "tables": [
                    {
                        "rate_rps": t.rate_rps,
                        "episodes": t.episodes,
                        "epsilon": t.epsilon,
                        "schedule_episode": t.schedule_episode,
                        "q_init": t.q_init,
                        "q": {
                            p.layout.state_key(s): [
                                v if t.tried.get(s, 0) >> a & 1 else None for a, v in enumerate(row)
                            ]
                            for s, row in t.q.items()
                        },
                    }
                    for _r, t in sorted(p.tables.items())
                ],
            }
            for p in policies
        ],
    }
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    except OSError as exc:
        raise InputError(f"cannot write Q-tables: {exc.strerror or exc}", path=path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise InputError(f"cannot write Q-tables: {exc.strerror or exc}", path=path) from None


class _Bad:
    """Builds the one-line :class:`InputError` of a Q-table file, naming the file and field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, where: str, msg: str) -> InputError:
        return InputError(msg, path=self.path, where=where or None)


def read_tables(path: Path) -> list[dict[str, Any]]:
    """Parse and validate a Q-table file; each policy's ``tables`` become :class:`QTable` objects.

    A missing, unreadable or corrupt file, another format version, or any malformed field is
    an :class:`InputError` (one line naming the file and the field).
    """
    bad = _Bad(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise bad("", "Q-table file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise bad("", f"cannot read Q-table file: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad("", f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise bad("format", f"not an ipa-ext Q-table file (expected format {FILE_FORMAT!r})")
    version = doc.get("version")
    if version != FILE_VERSION:
        raise bad("version", f"unsupported Q-table format version {version!r} (this ipa-ext reads version {FILE_VERSION})")
    policies = doc.get("policies")
    if not isinstance(policies, list):
        raise bad("policies", "expected a list")
    return [_read_policy(p, f"policies[{pi}]", bad) for pi, p in enumerate(policies)]


def _read_policy(p: Any, where: str, bad: _Bad) -> dict[str, Any]:
    """One entry of ``policies``: its layout checked against its actions, and its tables."""
    if not isinstance(p, dict):
        raise bad(where, "expected a mapping")
    for key, typ in (("layout", dict), ("reward", dict), ("actions", list), ("tables", list)):
        if not isinstance(p.get(key), typ):
            raise bad(f"{where}.{key}", f"missing or not a {typ.__name__}")
    try:
        layout = layout_from_dict(p["layout"])
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"{where}.layout", f"malformed layout: {exc}") from None
    if layout.as_dict() != p["layout"]:
        raise bad(f"{where}.layout", "malformed layout (axes out of order or duplicated)")
    if p["actions"] != layout.action_names:
        raise bad(f"{where}.actions", "does not match the layout's actions")
    tables = [_read_table(t, layout, f"{where}.tables[{ti}]", bad) for ti, t in enumerate(p["tables"])]
    if len({t.rate_rps for t in tables}) != len(tables):
        raise bad(f"{where}.tables", "two tables for the same rate")
    return {"layout": p["layout"], "reward": p["reward"], "tables": tables}


def _read_table(t: Any, layout: Layout, tw: str, bad: _Bad) -> QTable:
    """One table: its counters and ε checked, then its Q rows."""
    if not isinstance(t, dict):
        raise bad(tw, "expected a mapping")
    rate, eps, eps_n = t.get("rate_rps"), t.get("epsilon"), t.get("episodes")
    if not _is_number(rate) or rate < 0:
        raise bad(f"{tw}.rate_rps", f"expected a rate >= 0, got {shown(rate)}")
    if not _is_number(eps) or not 0 <= eps <= 1:
        raise bad(f"{tw}.epsilon", f"expected a number in 0..1, got {shown(eps)}")
    if isinstance(eps_n, bool) or not isinstance(eps_n, int) or not _is_number(eps_n) or eps_n < 0:
        raise bad(f"{tw}.episodes", f"expected a whole number >= 0, got {shown(eps_n)}")
    sched = t.get("schedule_episode")
    if isinstance(sched, bool) or not isinstance(sched, int) or not 0 <= sched <= eps_n:
        raise bad(f"{tw}.schedule_episode", f"expected a whole number from 0 to episodes, got {shown(sched)}")
    q_init = t.get("q_init")
    if not _is_number(q_init):
        raise bad(f"{tw}.q_init", f"expected a finite number, got {shown(q_init)}")
    q = t.get("q")
    if not isinstance(q, dict):
        raise bad(f"{tw}.q", "missing or not a mapping")
    table = QTable(layout.n_actions, float(rate), eps_n, float(eps), float(q_init), sched)
    for key, row in q.items():
        _read_row(table, layout, key, row, f"{tw}.q[{shown(key)}]", bad)
    return table


def _read_row(table: QTable, layout: Layout, key: str, row: Any, where: str, bad: _Bad) -> None:
    """One state's Q row into ``table``: ``null`` is an untried action (``q_init``)."""
    try:
        state = layout.parse_key(key)
    except ValueError as exc:
        raise bad(where, f"bad state key: {exc}") from None
    if not isinstance(row, list) or len(row) != layout.n_actions:
        raise bad(where, f"expected a list of {layout.n_actions} values")
    vals = []
    mask = 0
    for a, v in enumerate(row):
        if v is None:
            vals.append(table.q_init)
        elif not _is_number(v):
            raise bad(f"{where}[{a}]", f"expected a finite number or null, got {shown(v)}")
        else:
            vals.append(float(v))
            mask |= 1 << a
    table.q[state] = vals
    table.tried[state] = mask
