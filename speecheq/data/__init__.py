"""Kaldi-style data directories and the operations on them."""
