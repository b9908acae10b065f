"""speecheq: speech emotion recognition with Kaldi-style recipes and multitask learning.

``from speecheq import Recognizer`` loads a model for inference (see
:mod:`speecheq.inference.recognizer`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``Recognizer`` on first use, so that importing speecheq stays light."""
    if name == "Recognizer":
        from speecheq.inference import Recognizer

        return Recognizer
    raise AttributeError(f"module 'speecheq' has no attribute '{name}'")
