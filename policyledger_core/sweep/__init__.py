"""Sweeps: one policy per combination of settings and seeds, trained in parallel, verified, summarised."""
