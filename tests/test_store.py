"""The result store: atomic appends, append-if-absent, torn tails, concurrent writers, claims."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

from _driver_helpers import read_jsonl

from experiments.records.store import Store, encode, iter_records, parse_lines


def rec(key: str, status: str = "ok", **extra) -> dict:
    return {"key": key, "status": status, "metrics": {"x": 1.0}, **extra}


def test_append_reads_back_and_skips_a_stored_key(tmp_path: Path) -> None:
    store = Store(tmp_path, "run")
    assert store.append(rec("a"))
    assert store.append(rec("b", "oom"))
    assert not store.append(rec("a", extra_field=1))
    assert [r["key"] for r in read_jsonl(store.path)] == ["a", "b"]
    fresh = Store(tmp_path, "run")
    assert fresh.keys() == {"a", "b"}
    assert fresh.done("a") and fresh.done("b") and not fresh.done("c")


def test_retry_errors_lets_an_error_be_followed_by_a_result(tmp_path: Path) -> None:
    store = Store(tmp_path, "run")
    store.append(rec("a", "error"))
    assert store.done("a") and not store.done("a", retry_errors=True)
    assert not store.append(rec("a", "ok"))
    assert store.append(rec("a", "ok"), retry_errors=True)
    assert store.done("a", retry_errors=True)
    assert not store.append(rec("a", "ok"), retry_errors=True)
    assert [r["status"] for r in read_jsonl(store.path)] == ["error", "ok"]


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    store = Store(tmp_path, "run")
    store.append({"key": "n", "status": "nan", "metrics": {"a": float("nan"), "b": [1.0, float("inf")]}})
    line = store.path.read_text()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line)["metrics"] == {"a": None, "b": [1.0, None]}


def test_a_torn_tail_is_ignored_then_cut_by_the_next_writer(tmp_path: Path) -> None:
    store = Store(tmp_path, "run")
    store.append(rec("a"))
    with open(store.path, "ab") as fh:  # what a writer killed inside write() could leave
        fh.write(encode(rec("b"))[:17])
    reader = Store(tmp_path, "run")
    assert reader.keys() == {"a"}
    assert [r["key"] for r in reader.records()] == ["a"]
    assert reader.append(rec("c"))
    assert [r["key"] for r in read_jsonl(store.path)] == ["a", "c"]


def test_repair_cuts_a_torn_tail_without_appending(tmp_path: Path) -> None:
    store = Store(tmp_path, "run")
    store.dir.mkdir(parents=True)
    store.path.write_bytes(b'{"key": "torn", "sta')
    store.repair()
    assert store.path.read_bytes() == b""
    store.append(rec("a"))
    store.repair()
    assert [r["key"] for r in read_jsonl(store.path)] == ["a"]


def test_parse_lines_counts_complete_lines_only() -> None:
    data = encode(rec("a")) + encode(rec("b")) + b'{"key": "c"'
    records, used = parse_lines(data)
    assert [r["key"] for r in records] == ["a", "b"] and used == len(data) - len(b'{"key": "c"')


def _writer(folder: str, name: str, worker: int, n: int, shared: int) -> None:
    store = Store(folder, name)
    for i in range(n):
        store.append(rec(f"w{worker}-{i}", payload="x" * (3000 + 500 * worker)))
        store.append(rec(f"shared-{i % shared}", writer=worker))


def test_concurrent_writers_neither_lose_nor_duplicate(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    writers, n, shared = 4, 40, 25
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), "run", w, n, shared)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = read_jsonl(Store(tmp_path, "run").path)  # every line parses
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == writers * n + shared


def test_a_claim_excludes_another_driver_until_released(tmp_path: Path) -> None:
    one, two = Store(tmp_path, "run"), Store(tmp_path, "run")
    assert one.reserve("k")
    assert not two.reserve("k")
    assert two.reserve("other")
    one.release("k")
    assert two.reserve("k")
    two.release_all()
    assert not any((one.locks_dir).iterdir())


def test_a_dead_drivers_claim_vanishes(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    ready = ctx.Event()

    def hold() -> None:
        Store(tmp_path, "run").reserve("k")
        ready.set()
        os.kill(os.getpid(), 9)

    p = ctx.Process(target=hold)
    p.start()
    p.join(30)
    assert ready.is_set()
    assert Store(tmp_path, "run").reserve("k")


def test_iter_records_reads_every_run(tmp_path: Path) -> None:
    Store(tmp_path, "one").append(rec("a"))
    Store(tmp_path, "two").append(rec("b"))
    Store(tmp_path, "two").append(rec("c"))
    assert [r["key"] for r in iter_records(tmp_path)] == ["a", "b", "c"]
