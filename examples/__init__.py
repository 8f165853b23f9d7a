"""Bundled example pipelines, installed as ``ipa_ext.examples`` (data only)."""
