"""Tables as Markdown and CSV, byte-for-byte deterministic."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from experiments.claims.base import Table, fmt


def cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt(value)
    if value is None:
        return "-"
    return str(value)


def _md_cell(value: Any) -> str:
    return cell(value).replace("|", "\\|").replace("\n", " ")


def markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table_markdown(table: Table, max_rows: int | None = None) -> str:
    rows = table.rows if max_rows is None else table.rows[:max_rows]
    text = markdown(table.columns, rows)
    if max_rows is not None and len(table.rows) > max_rows:
        text += f"\n({len(table.rows) - max_rows} more rows in `results/tables/{table.name}.csv`.)\n"
    return text


def table_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([cell(v) for v in row])
    return buf.getvalue()
