"""ipa-ext: energy-aware inference-pipeline adaptation, extending IPA.

Plugin authors need only :data:`hookimpl` from here; see ``docs/plugins.md``.
"""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("ipa-ext")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+source"

from .hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
