"""Every recipe under egs/: its files, its training config, its corpus and its option parsing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from speecheq.corpora import corpus_names
from speecheq.labels import ClassMap
from speecheq.train.config import load_config

EGS = Path(__file__).resolve().parents[1] / "egs"
RECIPES = sorted(
    path.name for path in EGS.iterdir() if (path / "run.sh").is_file() and path.name != "multi"
)


def test_every_corpus_has_a_recipe_listed_in_the_readme() -> None:
    readme = (EGS.parent / "README.md").read_text(encoding="utf-8")
    assert set(RECIPES) == set(corpus_names())
    for recipe in [*RECIPES, "multi"]:
        assert f"| `{recipe}` |" in readme


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_files_and_config(recipe: str) -> None:
    folder = EGS / recipe
    run = (folder / "run.sh").read_text(encoding="utf-8")
    assert os.access(folder / "run.sh", os.X_OK)
    assert re.search(rf"--corpus {recipe}\b", run), "run.sh must name its preparer"
    assert re.search(r"--split-by (speaker|group|partition)\b", run), "run.sh sets its protocol"
    assert (folder / "path.sh").resolve() == (EGS / "TEMPLATE" / "path.sh").resolve()
    assert "--num-mel-bins" in (folder / "conf" / "fbank.conf").read_text(encoding="utf-8")
    config = load_config(folder / "conf" / "train.yaml")
    ClassMap.build(config.labels.classes, config.labels.merge)  # known categories, sane merges
    assert "emotion" in config.tasks


def run_recipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EGS / "casia" / "run.sh"), *args], capture_output=True, text=True, check=False
    )


def test_recipe_options() -> None:
    shown = run_recipe("--help")
    assert shown.returncode == 0
    assert "--corpus-dir DIR" in shown.stdout + shown.stderr
    unknown = run_recipe("--no-such-option", "1")
    assert unknown.returncode != 0
    assert "no-such-option" in unknown.stderr
    no_corpus = run_recipe("--stop-stage", "1")
    assert no_corpus.returncode != 0
    assert "--corpus-dir is required" in no_corpus.stderr
