"""Issue 15, the store: it says what it repaired, and a corrupt line in the middle moves to the
quarantine file beside ``records.jsonl``, so that every line of the store parses again."""

from __future__ import annotations

import io
import json
from pathlib import Path

from _driver_helpers import read_jsonl, use_fake, write_grid

from experiments.records.store import QUARANTINE, Store
from experiments.run.runner import run_grids


def rec(key: str, status: str = "ok") -> dict:
    return {"key": key, "status": status, "metrics": {"x": 1.0}}


def messages(results: Path) -> tuple[Store, list[str]]:
    said: list[str] = []
    return Store(results, "run", say=said.append), said


def test_a_torn_last_line_is_cut_and_its_cell_named(tmp_path: Path) -> None:
    store, said = messages(tmp_path)
    store.append(rec("aaaa"))
    with open(store.path, "ab") as fh:
        fh.write(b'{"key":"bbbb","status":"o')  # a writer killed inside its write
    store.repair()
    assert len(said) == 1 and "repaired a torn last line" in said[0] and "cell bbbb will rerun" in said[0]
    assert [r["key"] for r in read_jsonl(store.path)] == ["aaaa"]
    store.repair()
    assert len(said) == 1  # nothing left to repair: nothing said


def test_a_corrupt_middle_line_goes_to_the_quarantine_file(tmp_path: Path) -> None:
    store, said = messages(tmp_path)
    for key in ("k1", "k2"):
        store.append(rec(key))
    with open(store.path, "ab") as fh:
        fh.write(b'{"key":"k3","status":"ok",\x00\x00garbage}\n')  # complete, but no JSON
        fh.write(b"[1, 2]\n")  # JSON, but no record
    store.append(rec("k4"))
    store.repair()
    assert [r["key"] for r in read_jsonl(store.path)] == ["k1", "k2", "k4"]  # every line parses, order kept
    quarantined = (store.dir / QUARANTINE).read_bytes().splitlines()
    assert quarantined == [b'{"key":"k3","status":"ok",\x00\x00garbage}', b"[1, 2]"]
    assert len(said) == 1 and "moved 2 corrupt line(s) (line 3, 4)" in said[0] and "k3" in said[0]
    fresh = Store(tmp_path, "run", say=said.append)
    fresh.refresh()
    assert fresh.keys() == {"k1", "k2", "k4"}  # k3 will run again


def test_a_store_open_before_the_quarantine_appends_to_the_new_file(tmp_path: Path) -> None:
    store, said = messages(tmp_path)
    store.append(rec("k1"))
    with open(store.path, "ab") as fh:
        fh.write(b"not json\n")
    store.append(rec("k2"))
    other = Store(tmp_path, "run", say=said.append)
    other.refresh()  # read the file before it was replaced
    store.repair()
    assert other.append(rec("k3"))
    assert not other.append(rec("k1"))  # still known as stored after the replacement
    assert [r["key"] for r in read_jsonl(store.path)] == ["k1", "k2", "k3"]


def test_the_runner_reports_repairs_on_its_stream(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)
    grid = write_grid(
        tmp_path,
        "g",
        '[axes]\nhidden = [32, 33]\n[fixed]\narch = "lstm"\nbackend = "fake"\nseq_len = 8\nbatch = 4\n'
        "min_time_s = 0.01\n",
    )
    results = tmp_path / "r"
    run_grids([grid], results_dir=results, stream=io.StringIO())
    path = results / "g" / "records.jsonl"
    first, second = path.read_bytes().splitlines(keepends=True)
    key = json.loads(first)["key"]
    path.write_bytes(first.replace(b'"status"', b'"sta\xfftus', 1) + second[:40])  # corrupt, then torn
    stream = io.StringIO()
    summary = run_grids([grid], results_dir=results, stream=stream)
    text = stream.getvalue()
    assert "repaired a torn last line" in text and QUARANTINE in text and key in text
    assert summary.ran == 2  # both cells run again
    assert len(read_jsonl(path)) == 2
