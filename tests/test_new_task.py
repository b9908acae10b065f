"""A new task is one module: dropped into the task package, it trains, decodes, validates and is
scored by ``speecheq score`` with nothing else changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import speecheq.tasks
from speecheq.cli.main import app
from speecheq.fileio import read_table, write_table
from speecheq.predict import predict
from speecheq.train import train
from tests.synthetic import one_thread, tiny, write_feature_set  # noqa: F401

LANGUAGE_TASK = '''
"""Spoken language (``utt2lang``) as an auxiliary classification."""

from typing import Any

from speecheq.data.datadir import DataDir
from speecheq.tasks.base import TaskContext, TaskOptions
from speecheq.tasks.classification import ClassificationTask


class LanguageTask(ClassificationTask):
    name = "language"
    label_table = "utt2lang"
    decode_table = "utt2lang"

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        return {"classes": sorted(set(train.get("utt2lang").values()))}
'''


def test_a_task_module_is_all_a_new_task_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "extra"
    package.mkdir()
    (package / "language.py").write_text(LANGUAGE_TASK)
    monkeypatch.setattr(speecheq.tasks, "__path__", [*speecheq.tasks.__path__, str(package)])
    discovered = speecheq.tasks._discover()
    assert "language" in discovered and list(discovered)[-1] == "language"
    monkeypatch.setitem(speecheq.tasks.TASKS, "language", discovered["language"])

    data = write_feature_set(tmp_path / "data", per_class=3)
    utts = read_table(data / "utt2spk")
    write_table(data / "utt2lang", {utt: ("en", "zh")[i % 2] for i, utt in enumerate(utts)})
    config = tiny(tasks={"emotion": {}, "language": {"weight": 0.5}}, optim={"epochs": 2})
    result = train(config, data, data, tmp_path / "exp")
    assert "valid_language_UA" in result.history[-1]  # validated under its own name
    summaries = predict(tmp_path / "exp" / "model.pt", data, tmp_path / "decode", device="cpu")
    assert {s.task for s in summaries} == {"emotion", "language"}
    assert read_table(tmp_path / "decode" / "ref" / "utt2lang")  # its references are written
    out = CliRunner().invoke(
        app, ["score", str(tmp_path / "decode"), "--out-dir", str(tmp_path / "scores")]
    )
    assert out.exit_code == 0, out.output
    scores = json.loads((tmp_path / "scores" / "scores.json").read_text())
    assert {"language WA", "language UA", "emotion UA"} <= set(scores["pooled"]["metrics"])
