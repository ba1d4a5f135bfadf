"""Learning: hyperparameters, the single-agent and population trainers."""
