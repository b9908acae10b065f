"""speecheq: speech emotion recognition with Kaldi-style recipes and multitask learning.

``from speecheq import Recognizer, timeline_of`` loads a model for inference and runs it over a
long recording (see :mod:`speecheq.inference`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``Recognizer`` and ``timeline_of`` on first use, so that importing speecheq stays light."""
    if name in ("Recognizer", "timeline_of"):
        import speecheq.inference

        return getattr(speecheq.inference, name)
    raise AttributeError(f"module 'speecheq' has no attribute '{name}'")
