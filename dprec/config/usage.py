"""What `python -m dprec.main` tells a user before any JAX import: the help text, every config
field with its default and comment (`--config_help`: the specs' comments, and for the `method`
section the docs its cards give), and one-line reasons for a config that cannot be loaded.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import re
from collections.abc import Iterator
from typing import Any

from dprec import specs
from dprec.config import presets
from dprec.methods import method_fields

# Config section → the spec dataclass that holds its fields. The `method` section (after
# `model`) holds the methods' cards' fields instead: `_method_sections`.
SECTIONS = {
    "data": specs.DataSpec,
    "data.columns": specs.ColumnSpec,
    "data.synthetic": specs.SyntheticSpec,
    "model": specs.ModelSpec,
    "train": specs.TrainSpec,
    "eval": specs.EvalSpec,
}
# (field, default, comment) of one config field
Row = tuple[str, Any, str]

_MODE_NOTES = {"alternate": "DP on even steps, DN on odd", "dp": "DP only", "dn": "DN only"}


def help_text(program: str = "python -m dprec.main") -> str:
    """The `--help` text: the command, the choices, the override syntax and two examples."""
    modes = ", ".join(f"{mode} ({_MODE_NOTES.get(mode, mode)})" for mode in presets.MODES)
    return f"""Train and evaluate a denoised recommender; writes config, metrics and results to DIR.

usage: {program} --config=configs/default.py[:dataset=D,model=M,method=X,mode=Y] \\
           --workdir=DIR [--config.SECTION.FIELD=VALUE ...] [--dry_run] [--distributed]

  datasets  {", ".join(presets.DATASETS)}
  models    {", ".join(presets.MODELS)}
  methods   {", ".join(presets.METHODS)}
  modes     {modes}

The config argument applies the presets of that (dataset, model, method). Override any field
with --config.SECTION.FIELD=VALUE (e.g. --config.train.num_epochs=5, --config.eval.ks=10,50);
--config_help lists every field with its default.

examples:
  {program} --config=configs/default.py --workdir=runs/quickstart
  {program} --config=configs/default.py:dataset=table,method=dpi --workdir=runs/mine \\
      --config.data.path=clicks.csv --config.data.columns.user=uid \\
      --config.data.columns.item=sku

flags:
  --config       config file[:argument] (required)
  --workdir      run directory (required); a rerun of the same command resumes it
  --dry_run      check the config, the workdir and the data, print the data summary, exit
  --config_help  list every config field with its default and comment, then exit
  --verbosity=0  also show third-party INFO logs (orbax, JAX); default: dprec's lines and
                 warnings only
  --distributed  multi-process run (one process per host or GPU); JAX detects the
                 coordinator and the process ids (SLURM, TPU VM slices)
  --coordinator_address=HOST:PORT --num_processes=N --process_id=I
                 the same with explicit values (the same command on every process)
"""


def _field_comments(cls: type) -> dict[str, str]:
    """Field → the comment on its line, or on the comment lines just above it."""
    lines = inspect.getsource(cls).splitlines()
    tree = ast.parse(inspect.getsource(cls))
    comments = {}
    for node in tree.body[0].body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        row = node.lineno - 1
        _, _, trailing = lines[node.end_lineno - 1].partition("  # ")
        above = []
        while row > 0 and lines[row - 1].strip().startswith("#"):
            row -= 1
            above.insert(0, lines[row].strip().lstrip("#").strip())
        comments[node.target.id] = trailing.strip() or " ".join(above)
    return comments


def _section_default(section: str) -> Any:
    """The default value of `section` as its parent spec holds it: `data.columns` is
    `DataSpec().columns`."""
    head, *path = section.split(".")
    value = SECTIONS[head]()
    for name in path:
        value = getattr(value, name)
    return value


def _spec_rows(defaults: Any) -> list[Row]:
    """The rows of a spec's fields (a field that is a spec is a section of its own)."""
    comments = _field_comments(type(defaults))
    return [
        (field.name, getattr(defaults, field.name), comments.get(field.name, ""))
        for field in dataclasses.fields(defaults)
        if not dataclasses.is_dataclass(getattr(defaults, field.name))
    ]


def _method_sections() -> dict[str, list[Row]]:
    """The `method` section: its name and every registered card's field with the card's doc; a
    field whose default is a spec is a section of its own, with that default (`method.aux` is
    an MF, not `ModelSpec()`'s GMF)."""
    name_comment = _field_comments(specs.MethodSpec).get("name", "")
    sections = {"method": [("name", specs.MethodSpec.name, name_comment)]}
    for name, field in method_fields().items():
        if dataclasses.is_dataclass(field.default):
            sections[f"method.{name}"] = _spec_rows(field.default)
        else:
            sections["method"].append((name, field.default, field.doc))
    return sections


def config_sections() -> dict[str, list[Row]]:
    """Config section → the rows of its fields, in `--config_help`'s order."""
    sections = {}
    for section in SECTIONS:
        sections[section] = _spec_rows(_section_default(section))
        if section == "model":
            sections.update(_method_sections())
    return sections


def config_fields() -> Iterator[Row]:
    """(full field name, default, comment) of every config field, section by section."""
    yield "seed", 0, "seeds the initialisation, the negatives and the batches"
    for section, rows in config_sections().items():
        for name, default, comment in rows:
            yield f"{section}.{name}", default, comment


def config_help() -> str:
    """The `--config_help` text."""
    rows = [
        "Config fields (defaults before presets; override with --config.FIELD=VALUE):",
    ]
    for name, default, comment in config_fields():
        value = ",".join(map(str, default)) if isinstance(default, tuple) else repr(default)
        rows.append(f"  {name} = {value}" + (f"  # {comment}" if comment else ""))
    return "\n".join(rows) + "\n"


def unknown_field_message(argv: list[str]) -> str | None:
    """'unknown config field ...; the fields of SECTION are ...' for the first override in
    `argv` that names no config field, or None."""
    known = {name for name, _, _ in config_fields()}
    for arg in argv:
        match = re.match(r"^--?(?:no)?config\.([^=]+)", arg)
        if not match or match.group(1) in known:
            continue
        name = match.group(1)
        section = name.rpartition(".")[0]
        sections = config_sections()
        if section in sections:
            # A section's own sections are fields of it too (data.columns, method.aux).
            fields = [field for field, _, _ in sections[section]]
            fields += [s.rpartition(".")[2] for s in sections if s.rpartition(".")[0] == section]
            where = f"the fields of {section} are {', '.join(fields)}"
        else:
            where = f"the sections are {', '.join(s for s in sections if '.' not in s)}"
        return f"unknown config field {name}; {where} (--config_help lists them all)"
    return None


def config_file_message(argv: list[str], err: BaseException) -> str:
    """One line for a --config file that failed to load with `err`."""
    value = next((a.split("=", 1)[1] for a in argv if re.match(r"^--?config=", a)), "<none given>")
    path = value.split(":", 1)[0]
    if not os.path.isfile(path):
        return (
            f"config file {path} not found (relative to {os.getcwd()}); run from the "
            "repository root or pass an absolute path, e.g. --config=configs/default.py"
        )
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"cannot load --config={value}: {type(err).__name__}: {first}"
