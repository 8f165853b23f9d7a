"""IPA's adaptation loop: forecast, optimize, least change, apply, measure energy, log."""
