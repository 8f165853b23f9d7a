"""The components a config gets when it names none: documented defaults, not choices by name in code.

docs/configuration.md lists them; the baseline policies delegate to the default optimizer
unless their ``base`` option names another.
"""

from __future__ import annotations

DEFAULT_OPTIMIZER = "ilp"
"""``optimizer:`` when the config has none: IPA's objective solved exactly."""

DEFAULT_BACKEND = "simulation"
"""``backend:`` when the config has none: the embedded simulator."""
