"""Corpus preparers: one module per corpus, each reading the corpus as it is distributed.

Every public module here is a corpus named after the module. It defines
``prepare(corpus_dir: Path) -> DataDir``, mapping the corpus's own codes onto the unified
label space and filling every table the corpus supports, and ``TERMS``, its terms of use; its
docstring's first line is the corpus's one-line description. Adding a corpus means adding a
module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError


def corpus_names() -> list[str]:
    """The corpora that have a preparer, sorted."""
    return sorted(
        info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )


def corpus_module(name: str) -> ModuleType:
    """The preparer module of corpus ``name``."""
    if name not in corpus_names():
        raise SpeechEQError(f"unknown corpus '{name}' (known: {', '.join(corpus_names())})")
    return importlib.import_module(f"{__name__}.{name}")


def prepare(name: str, corpus_dir: str | Path) -> DataDir:
    """Prepare corpus ``name`` found at ``corpus_dir`` into a data directory (in memory)."""
    preparer: Callable[[Path], DataDir] = corpus_module(name).prepare
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.exists():
        raise SpeechEQError(f"{corpus_dir}: the {name} corpus directory does not exist")
    return preparer(corpus_dir)


def corpus_terms(name: str) -> str:
    """The terms of use of corpus ``name`` (its module's ``TERMS``)."""
    terms: str = corpus_module(name).TERMS
    return terms
