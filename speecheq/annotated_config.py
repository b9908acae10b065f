"""The default training config as YAML with every key's documentation as a comment: what
``speecheq train --print-config`` prints, and ``egs/TEMPLATE/conf/train_defaults.yaml`` holds.

A key's documentation is the string literal below its field in the config's dataclasses (and
in each task's options)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
from typing import Any

import yaml

from speecheq.config import TrainConfig, plain
from speecheq.tasks import TASKS

ANNOTATED_HEADER = """\
# The default training config of 'speecheq train', written by 'speecheq train --print-config'.
# Copy the keys a recipe changes into its conf/train.yaml; every key is optional, and a key that
# is not listed here is an error. Override any key on the command line with --set key=value.
"""


def annotated_defaults() -> str:
    """The default config as YAML, each key with its documentation as a comment.

    The tasks trained by default are listed; every other task is there too, commented out.
    """
    lines = [ANNOTATED_HEADER]
    _annotate(TrainConfig(), "", lines)
    return "\n".join(lines) + "\n"


def _annotate(config: Any, indent: str, lines: list[str]) -> None:
    docs = _field_docs(type(config))
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if not indent:
            lines.append("")
        lines.extend(_comment(docs.get(item.name, ""), indent))
        if dataclasses.is_dataclass(value):
            lines.append(f"{indent}{item.name}:")
            _annotate(value, indent + "  ", lines)
        elif item.name == "tasks":
            lines.append(f"{indent}{item.name}:")
            for name, task in TASKS.items():
                block: list[str] = [f"{indent}  {name}:"]
                _annotate(value.get(name) or task.options_type(), indent + "    ", block)
                lines.extend(block if name in value else [f"# {line}" for line in block])
        else:
            lines.append(f"{indent}{item.name}: {_flow(value)}")


def _flow(value: Any) -> str:
    return (
        yaml.safe_dump(plain(value), default_flow_style=True, width=1000)
        .strip()
        .removesuffix("\n...")
    )


def _comment(doc: str, indent: str) -> list[str]:
    text = " ".join(doc.split())
    width = max(40, 98 - len(indent))
    return [f"{indent}# {line}" for line in textwrap.wrap(text, width)] if text else []


def _field_docs(cls: type) -> dict[str, str]:
    """The documentation of a dataclass's fields: the string literal below each one."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = after.value.value
    return docs
