"""Package discovery for the build; everything else is in pyproject.toml.

``[tool.setuptools.packages.find]`` names packages after their folders, so it cannot install
``plugins/`` as ``ipa_ext_plugins``; this finds both trees and renames the second.
"""

from setuptools import find_packages, setup

PLUGINS = [f"ipa_ext_plugins{p[len('plugins'):]}" for p in find_packages(include=["plugins", "plugins.*"])]

setup(packages=[*find_packages(include=["ipa_ext", "ipa_ext.*"]), "ipa_ext.examples", *PLUGINS])
