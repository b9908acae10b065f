"""speecheq: speech emotion recognition with Kaldi-style recipes and multitask learning."""

__version__ = "0.1.0"
