"""Verification by replay: the evaluation suite, recorded figures, comparison, step-by-step episodes."""
