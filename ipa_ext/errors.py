"""Exception types whose messages a user can act on.

The CLI turns every :class:`IpaExtError` into one line on stderr and a non-zero
exit code; anything else is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations

from pathlib import Path


WHERE_LIMIT = 120
"""The longest field path an error names before it is cut short."""
PATH_LIMIT = 200
"""The longest file path an error names whole (longer ones keep their start and end)."""


def _short_path(path: str) -> str:
    return path if len(path) <= PATH_LIMIT else f"{path[:120]}...{path[-60:]}"


class IpaExtError(Exception):
    """Base class for every error ipa-ext reports to a user."""

    exit_code = 2


class InputError(IpaExtError):
    """Bad user input: a config, profile, trace or log that cannot be used.

    The message names the file and, where there is one, the row or field (a field
    path longer than :data:`WHERE_LIMIT` characters, built from hostile keys, is cut).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        where: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        if where is not None and len(where) > WHERE_LIMIT:
            where = where[:WHERE_LIMIT] + "..."
        self.where = where
        self.detail = message
        prefix = ""
        if self.path is not None:
            prefix = _short_path(self.path)
            if where:
                prefix += f": {where}"
            prefix += ": "
        elif where:
            prefix = f"{where}: "
        super().__init__(prefix + message)


class ConfigError(InputError):
    """A config file or config field is wrong."""


class ProfileError(InputError):
    """A pipeline or profile table is wrong."""


class PluginError(IpaExtError):
    """A plugin failed to load or registered something invalid."""


class UnknownNameError(ConfigError):
    """A name (optimizer, energy source, predictor, ...) that no plugin registered."""

    def __init__(
        self,
        kind: str,
        name: str,
        available: list[str],
        *,
        path: str | Path | None = None,
        where: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        choices = ", ".join(self.available) if self.available else "none registered"
        from .config.show import shown

        super().__init__(f"unknown {kind} {shown(name)} (available: {choices})", path=path, where=where)


class InfeasibleError(IpaExtError):
    """No configuration satisfies the constraints; the message gives the binding reason."""

    exit_code = 1


class TransientError(IpaExtError):
    """A fault that may clear by itself: a server that is down, a timeout, a 5xx, a conflict
    that kept recurring.

    The adapter loop keeps the current configuration, logs the message and tries
    again next interval; a one-shot command exits 1 with the message.
    """

    exit_code = 1
    component = ""
    """What failed (``kubernetes``, ``prometheus``), for metrics and the log."""


class SolverError(IpaExtError):
    """A MILP solver failed or stopped early (not: the problem is infeasible)."""

    exit_code = 3
