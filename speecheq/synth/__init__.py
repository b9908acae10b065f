"""The synthetic mini corpus: emotional speech generated with eSpeak NG (``speecheq synth``).

:mod:`~speecheq.synth.espeak` binds the library, :mod:`~speecheq.synth.prosody` renders
emotion, intensity and style, :mod:`~speecheq.synth.corpus` plans and writes the corpus.
"""
