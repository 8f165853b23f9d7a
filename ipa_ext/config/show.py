"""YAML-style rendering of input values for messages and summaries, cut short when long.

Error messages quote what the user wrote; :func:`shown` keeps such a quote to about
100 characters however large the value is (it stops walking a value once it has
enough), so a hostile input cannot make a huge error line.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any, Iterable, Mapping

QUOTE_LIMIT = 100
"""Characters of a value an error message quotes at most (plus an ellipsis)."""

_PLAIN = re.compile(r"[A-Za-z_/][\w./+-]*( [\w./+-]+)*")
_YAML_WORDS = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", ".nan", ".inf", "-.inf"}


class _Full(Exception):
    """Raised inside the renderer once the output has reached its limit."""


def int_text(value: int) -> str:
    """An integer's digits, or its size when it has too many to print usefully."""
    if value.bit_length() <= 330:  # about 100 digits
        return str(value)
    digits = int(value.bit_length() * math.log10(2)) + 1
    return f"{'-' if value < 0 else ''}<an integer of about {digits} digits>"


def _scalar(value: Any, plain: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int_text(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        return text.replace("e", ".0e") if "e" in text and "." not in text else text  # YAML 1.1 floats
    if isinstance(value, str):
        if not plain:
            return repr(value[: QUOTE_LIMIT * 4])
        if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value[: QUOTE_LIMIT * 4], ensure_ascii=False)
    return f"<{type(value).__name__}>"


def _render(value: Any, out: list[str], budget: list[float], plain: bool) -> None:
    def put(text: str) -> None:
        out.append(text)
        budget[0] -= len(text)
        if budget[0] < 0:
            raise _Full

    if isinstance(value, Mapping):
        put("{")
        for i, (k, v) in enumerate(value.items()):
            put(("" if i == 0 else ", ") + _scalar(k, plain) + ": ")
            _render(v, out, budget, plain)
        put("}")
    elif isinstance(value, (list, tuple)):
        put("[")
        for i, v in enumerate(value):
            if i:
                put(", ")
            _render(v, out, budget, plain)
        put("]")
    else:
        put(_scalar(value, plain))


def shown(value: Any, limit: int | None = QUOTE_LIMIT, *, plain: bool = False) -> str:
    """``value`` as YAML flow text (``null``, ``true``, ``{a: 1}``), at most ``limit``
    characters plus ``...`` (no limit with None).

    Strings are quoted (``'abc'``) for messages; ``plain`` writes them as YAML plain
    scalars where that reads back the same (``abc``), for summaries.
    """
    out: list[str] = []
    budget: list[float] = [limit if limit is not None else math.inf]
    try:
        _render(value, out, budget, plain)
    except _Full:
        return "".join(out)[:limit] + "..."
    except RecursionError:  # pragma: no cover - a value nested deeper than the loader allows
        return "".join(out)[: limit or QUOTE_LIMIT] + "..."
    return "".join(out)


def clip(text: str, limit: int = 300) -> str:
    """A message (not a value) cut to ``limit`` characters, for text from elsewhere."""
    return text if len(text) <= limit else text[:limit] + "..."


def listed(names: Iterable[Any], limit: int = 2 * QUOTE_LIMIT) -> str:
    """Names from an input (stages, columns, keys) as ``a, b, c``, cut to ``limit`` characters."""
    return clip(", ".join(str(n)[: limit + 1] for n in itertools.islice(names, 50)), limit)
