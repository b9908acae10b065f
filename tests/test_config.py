"""The training config: strict keys, documented defaults, command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from speecheq.annotated_config import annotated_defaults
from speecheq.cli.main import app
from speecheq.config import (
    TrainConfig,
    config_from_dict,
    load_config,
    write_config,
)
from speecheq.errors import SpeechEQError

# --- config ---------------------------------------------------------------------------------


DEFAULTS = Path(__file__).resolve().parents[1] / "egs" / "TEMPLATE" / "conf" / "train_defaults.yaml"


def test_the_committed_defaults_are_the_printed_ones_and_load_as_the_defaults() -> None:
    assert DEFAULTS.read_text(encoding="utf-8") == annotated_defaults()
    assert load_config(DEFAULTS) == TrainConfig()
    assert "# Passes over the training set." in annotated_defaults()
    assert "#   speaker:" in annotated_defaults()  # tasks not trained by default: commented out


@pytest.mark.parametrize(
    "path", sorted(DEFAULTS.parents[2].glob("*/conf/*.yaml")), ids=lambda p: "/".join(p.parts[-3:])
)
def test_every_recipe_config_loads(path: Path) -> None:
    load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model:\n  dmodel: 3\n",
            "unknown key 'model.dmodel' (valid keys: encoder, d_model, num_layers",
        ),
        ("optim:\n  lr: fast\n", "'optim.lr' must be a number, got 'fast'"),
        ("seed: 1.5\n", "'seed' must be an integer, got 1.5"),
        ("features:\n  cmvn: cepstral\n", "'features.cmvn' must be one of global, speaker"),
        ("tasks:\n  emotoin: {}\n", "unknown task 'tasks.emotoin' (known: emotion, intensity"),
        ("tasks:\n  emotion:\n    smoothing: 0.1\n", "unknown key 'tasks.emotion.smoothing'"),
        ("labels:\n  classes: [happy, joy]\n", "unknown emotion category 'joy'"),
        (
            "model:\n  encoder: conformer\n  d_model: 30\n  num_heads: 4\n",
            "d_model must be a multiple of model.num",
        ),
        ("optim: [1, 2]\n", "'optim' must be a mapping of keys"),
        ("model:\n  d_model: 32\n    num_layers: 2\n", "train.yaml:3: not valid YAML"),
    ],
)
def test_config_errors_name_the_file_and_the_key(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(SpeechEQError, match="train.yaml") as error:
        load_config(path)
    assert message in str(error.value)


def test_config_reads_numbers_yaml_leaves_as_strings_and_switches_tasks(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("optim:\n  lr: 1e-3\ntasks:\n  emotion: {weight: 2}\n  phone:\n")
    config = load_config(path)
    assert config.optim.lr == 0.001
    assert list(config.tasks) == ["emotion", "phone"] and config.tasks["emotion"].weight == 2.0
    switched = config.with_tasks(["gender", "emotion"])
    assert list(switched.tasks) == ["gender", "emotion"]
    assert switched.tasks["emotion"].weight == 2.0  # options kept from the config
    with pytest.raises(SpeechEQError, match="--tasks: unknown task 'speakers'"):
        config.with_tasks(["speakers"])
    assert config_from_dict(config.to_dict(), "again") == config


def test_overrides_set_any_key_typed_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("optim:\n  epochs: 3\ntasks:\n  emotion: {}\n")
    config = load_config(
        path,
        [
            "optim.lr=5e-4",
            "labels.classes=[happy, sad]",
            "tasks.phone.weight=0.5",
            "features.specaugment.warp=0.1",
            "seed=7",
        ],
    )
    assert config.optim.lr == 5e-4 and config.optim.epochs == 3
    assert config.labels.classes == ("happy", "sad")
    assert list(config.tasks) == ["emotion", "phone"] and config.tasks["phone"].weight == 0.5
    assert config.features.specaugment.warp == 0.1 and config.seed == 7


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr", "--set 'optim.lr': expected KEY=VALUE"),
        ("optim..lr=1", "expected KEY=VALUE"),
        ("seed.x=1", "'seed' is not a section"),
        ("optim.rate=1", "with --set optim.rate=1: unknown key 'optim.rate'"),
        ("optim.lr=fast", "'optim.lr' must be a number, got 'fast'"),
        ("labels.classes=[a", "the value is not valid YAML"),
    ],
)
def test_override_errors(override: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("seed: 1\n")
    with pytest.raises(SpeechEQError) as error:
        load_config(path, [override])
    assert message in str(error.value)


def test_a_written_config_reads_back_equal(tmp_path: Path) -> None:
    config = config_from_dict({"labels": {"merge": {"excited": "happy"}}}, "test")
    write_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["labels"]["classes"] == [
        "neutral",
        "happy",
        "angry",
        "sad",
    ]


def test_print_config_needs_no_other_option() -> None:
    result = CliRunner().invoke(app, ["train", "--print-config"])
    assert result.exit_code == 0
    assert result.stdout == annotated_defaults()
