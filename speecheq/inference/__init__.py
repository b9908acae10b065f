"""Inference on raw audio: the :class:`Recognizer` (files, arrays, long recordings with an
emotion timeline), what ``speecheq infer`` reads and writes, and ``speecheq export``."""

from speecheq.inference.recognizer import Prediction, Recognizer
from speecheq.inference.timeline import Segment, Timeline, TimelineOptions, timeline_of

__all__ = ["Prediction", "Recognizer", "Segment", "Timeline", "TimelineOptions", "timeline_of"]
