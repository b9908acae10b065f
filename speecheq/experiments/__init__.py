"""Experiments as plans of runs: a recipe's folds and seeds, the cross-corpus matrix, the
learning curve; one runner, one scorer, and the launchers that run their jobs here or on a
cluster (``speecheq exp``)."""
