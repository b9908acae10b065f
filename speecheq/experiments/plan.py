"""The plan primitive: a list of runs (train, valid and test sets, exp dir, config, tasks) and
the reports that score their decodes.

Every experiment is a plan: a recipe's folds (:mod:`.folds`), the cross-corpus matrix
(:mod:`.cross`), the label-fraction learning curve (:mod:`.curve`). One runner trains and
decodes the runs of any plan (:mod:`.runner`), one scorer writes its reports. A plan is saved
as ``plan.json`` in its experiment folder, with every path as given (relative paths are taken
from the folder the commands run in, as in Kaldi recipes).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write

PLAN = "plan.json"
KINDS = ("folds", "cross", "curve")


@dataclass(frozen=True)
class Run:
    """One training (into ``exp_dir``) and the test sets its model decodes."""

    name: str
    """Unique in the plan, e.g. ``fold1`` or ``emotion-gender/casia+emodb/fold1``."""
    exp_dir: str
    train: str
    valid: str
    tests: dict[str, str]
    """Test name -> data directory; decoded into ``exp_dir/decode_<name>``."""
    config: str
    """The training config (YAML)."""
    tasks: tuple[str, ...] = ()
    """The tasks trained (empty: the config's)."""
    overrides: tuple[str, ...] = ()
    """``key=value`` changes of the config (``speecheq train --set``)."""
    lang_dir: str | None = None
    unlabeled: tuple[str, ...] = ()
    """Data directories of unlabeled speech (``--unlabeled-dir``)."""

    def decode_dir(self, test: str) -> Path:
        return Path(self.exp_dir) / f"decode_{test}"


@dataclass(frozen=True)
class Report:
    """A report of scores over some decodes (the folds of one system, say)."""

    name: str
    out_dir: str
    decodes: tuple[tuple[str, str], ...]
    """(run name, test name) of each decode directory scored, one per fold or test set."""
    notes: tuple[str, ...] = ()
    """What the report must say of its protocol (e.g. that its folds are speaker-dependent)."""


@dataclass(frozen=True)
class Plan:
    """The runs of an experiment, its reports, and what its summary needs."""

    kind: str
    """``folds``, ``cross`` or ``curve``: which summary :func:`speecheq.experiments.score` adds."""
    runs: list[Run]
    reports: list[Report]
    summary: dict[str, Any] = field(default_factory=dict)
    """Plain data the kind's summary needs (e.g. the cross-corpus training sets)."""

    def __post_init__(self) -> None:
        names = [run.name for run in self.runs]
        if len(set(names)) != len(names):
            raise ValueError("run names must be unique")

    def run(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise SpeechEQError(f"the plan has no run '{name}' (runs: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [run.name for run in self.runs]

    def save(self, out_dir: str | Path) -> None:
        """Write ``out_dir/plan.json``."""
        with atomic_write(Path(out_dir) / PLAN) as out:
            json.dump(asdict(self), out, indent=2, ensure_ascii=False)
            out.write("\n")

    @classmethod
    def load(cls, out_dir: str | Path) -> Plan:
        """Read ``out_dir/plan.json`` (written by :meth:`save`)."""
        path = Path(out_dir) / PLAN
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            runs = [
                Run(
                    **{
                        **run,
                        "tests": dict(run["tests"]),
                        "tasks": tuple(run["tasks"]),
                        "overrides": tuple(run["overrides"]),
                        "unlabeled": tuple(run["unlabeled"]),
                    }
                )
                for run in data["runs"]
            ]
            reports = [
                Report(
                    r["name"],
                    r["out_dir"],
                    tuple((a, b) for a, b in r["decodes"]),
                    tuple(r.get("notes", ())),
                )
                for r in data["reports"]
            ]
            if data["kind"] not in KINDS:
                raise ValueError(f"unknown kind '{data['kind']}'")
            return cls(data["kind"], runs, reports, dict(data["summary"]))
        except FileNotFoundError:
            raise SpeechEQError(
                f"{path}: no plan here (write one with 'speecheq exp folds|cross|curve')"
            ) from None
        except json.JSONDecodeError as err:
            raise SpeechEQError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        except (KeyError, TypeError, ValueError) as err:
            raise SpeechEQError(f"{path}: not a plan of 'speecheq exp' ({err})") from None
