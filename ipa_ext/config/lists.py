"""Splitting comma lists whose items may hold commas of their own."""

from __future__ import annotations


def split_top_level(text: str, *, nest: str = "", toggle: str = "") -> list[str]:
    """Split ``text`` on the commas outside brackets, keeping empty items.

    ``nest`` is an opening and closing pair that nests (``"()"`` for ``kubectl -l``'s
    ``env in (a,b)``); ``toggle`` a character that opens and closes in turn (``"/"`` for
    perf's ``cpu/event=1,umask=2/``).
    """
    out, cur, depth, inside = [], "", 0, False
    for ch in text:
        if nest and ch == nest[0]:
            depth += 1
        elif nest and ch == nest[1]:
            depth -= 1
        elif toggle and ch == toggle:
            inside = not inside
        if ch == "," and depth == 0 and not inside:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out
