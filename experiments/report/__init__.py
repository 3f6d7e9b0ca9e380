"""``seqbench report``: the verdict table, per-claim tables, figures and the paper, from the records.

``write_report(results_dir, paper_dir)`` writes

- ``<results>/claims.md``: the verdict table ``| ID | claim | source | measured | verdict | device |``;
- ``<results>/tables/<name>.md`` and ``.csv``: every claim's tables, and the suite's own;
- ``<paper>/figures/<name>.png`` and ``.svg``;
- ``<paper>/paper.md``.

The paper goes where ``paper_dir`` says, by default ``default_paper_dir(results_dir)``: ``paper/``
beside the results folder (the committed ``results/`` and ``paper/``), except for a folder inside
a folder named ``results`` (``results/local``, a reproduction's), which keeps its paper inside it
(``results/local/paper``), so that a local run writes nothing outside its git-ignored folder.

Its output depends on the records (and ``<results>/verify/*.json``) alone: run twice, it
writes the same bytes. Files it generated before and no longer generates are removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from experiments.claims import analyze_all
from experiments.records.fields import load_records
from experiments.report.figures import render
from experiments.report.inventory import hardware_table, status_table, stored
from experiments.report.paper import paper_markdown
from experiments.report.performance import (
    machine_fraction_table,
    overhead_table,
    performance_points_table,
    performance_table,
)
from experiments.report.tables import table_csv, table_markdown
from experiments.report.verdicts import claims_markdown
from experiments.report.verify import load_verify, verify_tables


@dataclass
class ReportSummary:
    records: int
    verdicts: dict[str, str]
    files: list[Path] = field(default_factory=list)


def _write(path: Path, text: str, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    written.append(path)


def _prune(folder: Path, suffixes: tuple[str, ...], keep: set[Path]) -> None:
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.suffix in suffixes and path not in keep:
            path.unlink()


def default_paper_dir(results_dir: str | Path) -> Path:
    """``paper/`` beside ``results_dir``; ``<results_dir>/paper`` for a folder inside a ``results/`` folder."""
    resolved = Path(results_dir).resolve()
    if resolved.parent.name == "results":
        return Path(results_dir) / "paper"
    return resolved.parent / "paper"


def write_report(results_dir: str | Path = "results", paper_dir: str | Path | None = None) -> ReportSummary:
    results_dir = Path(results_dir)
    paper_dir = Path(paper_dir) if paper_dir is not None else default_paper_dir(results_dir)
    records = load_records(results_dir)
    store = stored(results_dir)
    results = analyze_all(records)
    verify = load_verify(results_dir)
    tables_dir, figures_dir = results_dir / "tables", paper_dir / "figures"
    written: list[Path] = []

    tables = [t for res in results.values() for t in res.tables]
    tables += [hardware_table(records), status_table(store)]
    tables += [performance_points_table(records), overhead_table(records), machine_fraction_table(records)]
    tables.append(performance_table(records))
    if verify:
        tables += list(verify_tables(verify))
    for table in tables:
        _write(tables_dir / f"{table.name}.md", f"# {table.title}\n\n" + table_markdown(table), written)
        _write(tables_dir / f"{table.name}.csv", table_csv(table), written)

    figure_names: dict[str, list[str]] = {}
    for cid, res in results.items():
        for fig in res.figures:
            written += render(fig, figures_dir)
            figure_names.setdefault(cid, []).append(fig.name)

    _write(results_dir / "claims.md", claims_markdown(results, records, store), written)
    _write(paper_dir / "paper.md", paper_markdown(results, records, verify, figure_names, store), written)
    keep = set(written)
    _prune(tables_dir, (".md", ".csv"), keep)
    _prune(figures_dir, (".png", ".svg"), keep)
    return ReportSummary(records=len(records), verdicts={cid: r.verdict for cid, r in results.items()}, files=written)
