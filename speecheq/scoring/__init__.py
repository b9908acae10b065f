"""Stage 5 scoring: read decode directories, score every task, aggregate folds, write reports."""
