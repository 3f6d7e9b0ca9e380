"""A setting a cell kind gains later leaves stored records valid at its default (cell.KEY_NEUTRAL_SETTINGS)."""

from __future__ import annotations

import json

from experiments.cell import KEY_NEUTRAL_SETTINGS, config_key
from experiments.records.store import Store

BASE = {"kind": "train", "arch": "lstm", "seed": 0, "settings": {"steps": 10}}


def test_a_neutral_setting_at_its_default_keeps_the_key() -> None:
    for name, default in KEY_NEUTRAL_SETTINGS.items():
        spelt = {**BASE, "settings": {**BASE["settings"], name: default}}
        assert config_key(spelt) == config_key(BASE)


def test_a_neutral_setting_off_its_default_changes_the_key() -> None:
    changed = {**BASE, "settings": {**BASE["settings"], "relative_threshold": 0.5}}
    assert config_key(changed) != config_key(BASE)
    assert config_key({**BASE, "settings": {"steps": 11}}) != config_key(BASE)


def test_the_store_counts_a_record_stored_under_an_older_spelling(tmp_path) -> None:
    spelt = {**BASE, "settings": {**BASE["settings"], "relative_threshold": None, "stop_at_threshold": False}}
    old_key = "0123456789abcdef"  # what an older config_key made of the spelt-out config
    (tmp_path / "g").mkdir()
    record = {"key": old_key, "config": spelt, "status": "ok"}
    (tmp_path / "g" / "records.jsonl").write_text(json.dumps(record) + "\n")
    store = Store(tmp_path, "g")
    store.refresh()
    assert store.done(old_key)
    assert store.done(config_key(BASE))
    assert not store.done(config_key({**BASE, "seed": 1}))
