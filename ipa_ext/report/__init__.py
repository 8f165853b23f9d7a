"""Run summaries, text tables and plots."""
