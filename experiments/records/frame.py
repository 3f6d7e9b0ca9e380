"""The records as one table: ``load(results_dir) -> pandas.DataFrame``, one row per record.

Rows are the records ``fields.load_records`` returns (one per key, the same ones every report
counts), in its order. Columns, flattened with dots:

- the record's own fields: ``key``, ``schema``, ``grid``, ``claim_ids`` (a tuple), ``arch``,
  ``backend``, ``path`` (the kernel that ran), ``task``, ``kind``, ``seed``, ``status``, ...;
- its config, relative to ``config``: ``batch``, ``seq_len``, ``precision``, ``device``,
  ``spec.hidden_size``, ``optimizer.lr``, ``settings.steps``, ``task_params.n_train``, ...; the
  config's ``path`` (the ``auto|on|off`` switch or a kernel asked for) is ``path_choice``, so that
  ``path`` stays what ran;
- its metrics under their own names (``step_s_median``, ``final_val_metric``, ``curves.val_metric.value``);
  a metric whose name a config column already has is ``metrics.<name>``;
- ``env.<name>`` for the environment, ``sizes.<name>`` for the grid's size coordinates;
- two read through ``fields`` so that schema 1 and 2 records agree: ``hidden`` (the grid's hidden
  coordinate) and ``device_name``.

Lists (curves, per-step gradient norms) stay lists in object columns. pandas is imported when
``load`` is called, not with this module: the driver and the report never need it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.records import fields as R
from experiments.records.fields import Record

if TYPE_CHECKING:
    import pandas

SECTIONS = ("config", "metrics", "env", "sizes")  # the record's nested parts; everything else is its own field


def _flat(value: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, item in value.items():
        if isinstance(item, Mapping):
            yield from _flat(item, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", item


def config_fields(rec: Record) -> dict[str, Any]:
    """The record's config, flattened with dots relative to ``config`` (``spec.hidden_size``, ``optimizer.lr``)."""
    return dict(_flat(rec.get("config") or {}))


def flatten(rec: Record) -> dict[str, Any]:
    """One record as a flat ``{column: value}`` (the columns the module docstring lists)."""
    row: dict[str, Any] = {}
    for name, value in rec.items():
        if name in SECTIONS:
            continue
        row[name] = tuple(value) if isinstance(value, list) else value
    for name, value in config_fields(rec).items():
        if name == "path":
            row["path_choice"] = value
        elif name not in row:  # arch, backend, kind, seed, task: the same value at the top
            row[name] = value
    config_names = set(row)
    for name, value in _flat(rec.get("metrics") or {}):
        row[f"metrics.{name}" if name in config_names else name] = value
    for section in ("env", "sizes"):
        for name, value in _flat(rec.get(section) or {}):
            row[f"{section}.{name}"] = value
    row["hidden"] = R.size(rec)
    row["device_name"] = R.device_name(rec)
    return row


def frame(records: list[Record]) -> pandas.DataFrame:
    """``records`` as a DataFrame, one row each, columns in order of first appearance."""
    import pandas

    rows = [flatten(r) for r in records]
    columns = list(dict.fromkeys(name for row in rows for name in row))
    return pandas.DataFrame(rows, columns=columns)


def load(results_dir: str | Path = "results") -> pandas.DataFrame:
    """Every record under ``results_dir`` as a DataFrame (see the module docstring for its columns).

    >>> df = load("results")
    >>> df[df.kind == "bench"].groupby(["backend", "arch", "seq_len"]).step_s_median.median()
    """
    return frame(R.load_records(results_dir))
