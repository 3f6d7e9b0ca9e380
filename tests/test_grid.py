"""Grid files: validation (one-line errors, exit status 2), expansion, resolution, stable keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _driver_helpers import use_fake, write_grid

from experiments import grid as grid_mod
from experiments.cell import Cell, config_key
from experiments.cli import main
from experiments.errors import UserError
from experiments.grid import grid_names, grids_for_claim, grids_in_preset, load_grid, preset_names
from experiments.kinds import CELL_KINDS, register_cell_kind
from experiments.spec import ARCHITECTURES, size_fields

BASE = """
kind = "bench"
[axes]
arch = ["lstm", "transformer"]
backend = ["torch", "jax"]
[fixed]
seq_len = 16
hidden = 32
batch = 4
"""


def cells_of(tmp_path: Path, text: str, name: str = "g") -> list[Cell]:
    return load_grid(write_grid(tmp_path, name, text)).cells()


# -- the shipped grids ---------------------------------------------------------------------


@pytest.mark.parametrize("name", grid_names())
def test_every_shipped_grid_loads_and_resolves(name: str) -> None:
    cells = load_grid(name).cells()
    assert cells
    assert len({c.key for c in cells}) == len(cells)


def test_smoke_covers_both_backends_and_both_kinds() -> None:
    cells = load_grid("smoke").cells()
    assert {c.backend for c in cells} == {"torch", "jax"}
    assert {c.kind for c in cells} == {"bench", "train"}
    assert all(c.device == "cpu" for c in cells)
    train = [c for c in cells if c.kind == "train"]
    assert all(c.task == "adding" for c in train)
    assert all(c.spec_dict["input_size"] == 2 and c.spec_dict["head_kind"] == "regress" for c in train)


def test_driver_check_is_the_acceptance_grid() -> None:
    cells = load_grid("driver_check").cells()
    assert len(cells) == 3 * 2 * 2 * 2
    assert {c.arch for c in cells} == {"lstm", "gru", "transformer"}
    assert {c.seq_len for c in cells} == {16, 64}
    assert {c.spec_dict.get("hidden_size", c.spec_dict.get("d_model")) for c in cells} == {32, 64}


# -- expansion and resolution ----------------------------------------------------------------


def test_axes_expand_in_order_and_sizes_map_to_spec_fields(tmp_path: Path) -> None:
    cells = cells_of(tmp_path, BASE + "layers = 2\n")
    assert [(c.arch, c.backend) for c in cells] == [
        ("lstm", "torch"),
        ("lstm", "jax"),
        ("transformer", "torch"),
        ("transformer", "jax"),
    ]
    lstm, tr = cells[0], cells[2]
    assert lstm.spec_dict["hidden_size"] == 32 and lstm.spec_dict["num_layers"] == 2
    for name, value in size_fields("transformer", 32).items():
        assert tr.spec_dict[name] == value
    assert tr.seq_len == 16 and tr.batch == 4 and tr.precision == "float32" and tr.path_choice == "auto"
    assert tr.task is None and tr.seed == 0


def test_explicit_spec_fields_win_and_apply_only_where_they_exist(tmp_path: Path) -> None:
    cells = cells_of(tmp_path, BASE + "num_heads = 2\nbidirectional = true\n")
    by_arch = {c.arch: c for c in cells}
    assert by_arch["transformer"].spec_dict["num_heads"] == 2
    assert by_arch["lstm"].spec_dict["bidirectional"] is True
    assert "bidirectional" not in by_arch["transformer"].spec_dict


def test_all_marker_expands_to_the_registry(tmp_path: Path) -> None:
    text = '[axes]\narch = "all"\n[fixed]\nbackend = "torch"\n'
    assert [c.arch for c in cells_of(tmp_path, text)] == list(ARCHITECTURES)


def test_exclude_and_override(tmp_path: Path) -> None:
    text = (
        BASE
        + '[[exclude]]\narch = "lstm"\nbackend = "jax"\n'
        + '[[override]]\nwhen = { arch = "transformer" }\nset = { hidden = 64, lr = 0.01 }\n'
    )
    cells = cells_of(tmp_path, text)
    assert [(c.arch, c.backend) for c in cells] == [("lstm", "torch"), ("transformer", "torch"), ("transformer", "jax")]
    assert all(c.spec_dict["d_model"] == 64 and c.optimizer["lr"] == 0.01 for c in cells if c.arch == "transformer")
    assert cells[0].optimizer["lr"] == 1e-3


def test_task_parameters_can_be_an_axis(tmp_path: Path) -> None:
    text = 'kind = "train"\n[axes]\ntask_params.n_train = [64, 128]\n'
    text += '[fixed]\narch = "lstm"\nbackend = "torch"\ntask = "adding"\ntask_params.n_val = 8\n'
    cells = cells_of(tmp_path, text)
    assert [c.task_params for c in cells] == [{"n_train": 64, "n_val": 8}, {"n_train": 128, "n_val": 8}]
    with pytest.raises(UserError, match=r"axes\.task_params\.n_train"):
        cells_of(tmp_path, text.replace("[64, 128]", "64"), "h")


def test_patterns_see_the_file_level_kind(tmp_path: Path) -> None:
    text = BASE.replace('kind = "bench"', 'kind = "train"') + 'task = "adding"\n'
    text += '[[override]]\nwhen = { kind = "train", arch = "lstm" }\nset = { steps = 3 }\n'
    cells = cells_of(tmp_path, text)
    assert {c.arch: c.settings["steps"] for c in cells} == {"lstm": 3, "transformer": 500}


def test_train_cells_take_input_and_head_from_the_task(tmp_path: Path) -> None:
    text = """
kind = "train"
[axes]
seq_len = [10, 30]
[fixed]
arch = "gru"
backend = "torch"
task = "adding"
task_params = { n_train = 64, n_val = 16, n_test = 16 }
steps = 7
clip_norm = 1.0
optimizer = "sgd"
"""
    cells = cells_of(tmp_path, text)
    assert [c.seq_len for c in cells] == [10, 30]
    c = cells[0]
    assert c.spec_dict["input_size"] == 2 and c.spec_dict["head_kind"] == "regress" and c.spec_dict["head_out"] == 1
    assert c.task_params == {"n_train": 64, "n_val": 16, "n_test": 16, "seq_len": 10}
    assert c.settings["steps"] == 7 and c.settings["eval_every"] == 50
    assert c.optimizer["name"] == "sgd" and c.optimizer["clip_norm"] == 1.0
    assert c.data_seed == c.seed == 0


def test_device_flag_overrides_the_grid(tmp_path: Path) -> None:
    grid = load_grid(write_grid(tmp_path, "g", BASE + 'device = "cpu"\n'))
    assert {c.device for c in grid.cells("cuda")} == {"cuda"}
    assert all(c.resources["gpus"] == 1 for c in grid.cells("cuda"))
    assert all(c.resources["gpus"] == 0 for c in grid.cells())


# -- keys ------------------------------------------------------------------------------------


def test_keys_are_stable_and_sensitive(tmp_path: Path) -> None:
    a = cells_of(tmp_path, BASE, "a")
    b = cells_of(tmp_path, BASE, "b")  # another grid, same cells: same keys
    assert [c.key for c in a] == [c.key for c in b]
    assert a[0].key == config_key(json.loads(json.dumps(a[0].config)))
    reordered = dict(reversed(list(a[0].config.items())))
    assert config_key(reordered) == a[0].key
    for change in ("batch = 5", "seq_len = 17", "hidden = 48", 'precision = "float64"', "seed = 1", "lr = 0.01"):
        key = change.split(" = ")[0]
        text = "\n".join(line for line in BASE.splitlines() if not line.startswith(f"{key} ="))
        other = cells_of(tmp_path, text + f"\n{change}\n", "c")
        assert other[0].key != a[0].key, change
    # resources are how, not what: not part of the key
    assert cells_of(tmp_path, BASE + "timeout_s = 5.0\ncpus = 2\n", "d")[0].key == a[0].key


def test_a_key_is_the_hash_of_the_full_resolved_config(tmp_path: Path) -> None:
    cell = cells_of(tmp_path, BASE)[0]
    assert set(cell.config) >= {"kind", "arch", "backend", "device", "precision", "spec", "optimizer", "settings"}
    assert set(cell.config["spec"]) >= {"input_size", "hidden_size", "num_layers", "head_kind", "head_out"}
    assert len(cell.key) == 16 and int(cell.key, 16) >= 0


# -- refusals --------------------------------------------------------------------------------

BAD = [
    ("unknown top-level key", 'kinds = "bench"\n', "kinds"),
    ("unknown axis key", BASE.replace("hidden = 32", "hiden = 32"), "hiden"),
    ("T < 1", BASE.replace("seq_len = 16", "seq_len = 0"), "seq_len"),
    ("a string for a number", BASE.replace("batch = 4", 'batch = "4"'), "batch"),
    ("unknown precision", BASE + 'precision = "fp8"\n', "precision"),
    ("heads not dividing d_model", BASE + "num_heads = 3\n", "num_heads"),
    ("unknown architecture", BASE.replace('"lstm", "transformer"', '"lstm", "mamba"'), "arch"),
    ("unknown backend", BASE.replace('"torch", "jax"', '"torch", "tensorflow"'), "backend"),
    ("unknown kind", BASE.replace('kind = "bench"', 'kind = "profile"'), "kind"),
    ("empty axis", BASE.replace('["torch", "jax"]', "[]"), "backend"),
    ("a bench cell with a task", BASE + 'task = "adding"\n', "task"),
    ("a train cell without a task", BASE.replace('kind = "bench"', 'kind = "train"'), "task"),
    (
        "a task's field set by hand",
        BASE.replace('kind = "bench"', 'kind = "train"') + 'task = "adding"\ninput_size = 3\n',
        "input_size",
    ),
    ("unknown task", BASE.replace('kind = "bench"', 'kind = "train"') + 'task = "nope"\n', "task"),
    (
        "bad task parameter",
        BASE.replace('kind = "bench"', 'kind = "train"') + 'task = "adding"\ntask_params.bogus = 1\n',
        "task",
    ),
    ("below the protocol", BASE + "warmup_steps = 1\n", "warmup_steps"),
    ("one batch only", BASE + "n_batches = 1\n", "n_batches"),
    ("negative lr", BASE + "lr = -1.0\n", "lr"),
    ("longer than max_len", BASE.replace("seq_len = 16", "seq_len = 64") + "max_len = 32\n", "seq_len"),
    ("no backend", '[axes]\narch = ["lstm"]\n', "backend"),
    ("a key in axes and fixed", BASE.replace("[fixed]", '[fixed]\narch = "gru"'), "arch"),
    ("odd d_model with sinusoids", BASE.replace("hidden = 32", "hidden = 33"), "d_model"),
    ("bad TOML", "[axes\n", "TOML"),
    (
        "a spec field of no architecture in the grid",
        BASE.replace('"lstm", "transformer"', '"lstm", "gru"') + "num_heads = 2\n",
        "num_heads",
    ),
]


@pytest.mark.parametrize(("why", "text", "names"), BAD, ids=[b[0] for b in BAD])
def test_a_broken_grid_is_refused_naming_file_and_key(tmp_path: Path, why: str, text: str, names: str) -> None:
    path = write_grid(tmp_path, "broken", text)
    with pytest.raises(UserError) as info:
        load_grid(path).cells()
    message = str(info.value)
    assert "broken.toml" in message and names in message, message
    assert "\n" not in message


def test_the_cli_refuses_a_broken_grid_with_status_2_before_running(tmp_path: Path, capsys) -> None:
    path = write_grid(tmp_path, "broken", BASE + "num_heads = 3\n")
    results = tmp_path / "results"
    assert main(["run", str(path), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "broken.toml" in err[0] and "num_heads" in err[0]
    assert not results.exists()


def test_the_cli_refuses_unknown_grids_presets_and_claims(capsys) -> None:
    assert main(["run", "no_such_grid"]) == 2
    assert main(["run", "--preset", "no_such_preset"]) == 2
    assert main(["run", "--claim", "Z99"]) == 2
    assert main(["run"]) == 2
    assert main(["bench", "--arch", "mamba", "--backend", "torch"]) == 2
    assert main(["bench", "--arch", "lstm", "--backend", "torch", "--seq-len", "0"]) == 2
    assert capsys.readouterr().err.count("error: ") == 6


def test_dry_run_lists_cells_and_keys(tmp_path: Path, capsys) -> None:
    path = write_grid(tmp_path, "g", BASE)
    assert main(["run", str(path), "--dry-run", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert out.startswith("g: 4 cells") and len(lines) == 6  # the grid, its 4 cells, the estimate's total
    assert lines[-1].startswith("4 cells, estimated") and "device seconds" in lines[-1]
    assert not (tmp_path / "r").exists()


# -- presets, claims, plugin kinds ------------------------------------------------------------------


def test_presets_and_claims_are_declared_in_the_grid_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(grid_mod, "CONFIG_DIR", tmp_path)
    write_grid(tmp_path, "one", 'presets = ["quick"]\nclaim_ids = ["S1", "S6"]\n' + BASE)
    write_grid(tmp_path, "two", 'presets = ["quick", "full"]\nclaim_ids = ["S6"]\n' + BASE)
    write_grid(tmp_path, "three", BASE)
    assert grid_names() == ["one", "three", "two"]
    assert preset_names() == ["full", "quick"]
    assert grids_in_preset("quick") == ["one", "two"]
    assert grids_in_preset("full") == ["two"]
    assert grids_for_claim("S6") == ["one", "two"]
    assert grids_for_claim("S1") == ["one"]
    assert load_grid("one").claim_ids == ("S1", "S6")
    assert all(c.claim_ids == ("S1", "S6") for c in load_grid("one").cells())


def test_a_plugin_kind_brings_its_own_settings(tmp_path: Path) -> None:
    @register_cell_kind("probe_for_test", settings={"probe_steps": 5, "scale": None}, task="optional")
    def probe(backend, cell):  # pragma: no cover - never run here
        return {}

    try:
        text = BASE.replace('kind = "bench"', 'kind = "probe_for_test"') + "probe_steps = 9\nscale = 0.5\n"
        cell = cells_of(tmp_path, text)[0]
        assert cell.kind == "probe_for_test" and cell.settings == {"probe_steps": 9, "scale": 0.5}
        with pytest.raises(UserError, match="probe_steps"):
            cells_of(tmp_path, text.replace("probe_steps = 9", 'probe_steps = "x"'), "h")
        with pytest.raises(UserError, match="min_time_s"):  # a bench setting does not apply to this kind
            cells_of(tmp_path, text + "min_time_s = 2.0\n", "i")
    finally:
        CELL_KINDS.pop("probe_for_test", None)


def test_test_backends_are_named_apart_and_never_replace_real_ones(tmp_path: Path, monkeypatch) -> None:
    text = BASE.replace('["torch", "jax"]', '["fake"]')
    with pytest.raises(UserError, match="backend"):
        cells_of(tmp_path, text)
    use_fake(monkeypatch)
    assert {c.backend for c in cells_of(tmp_path, text)} == {"fake"}
    monkeypatch.setenv("SEQBENCH_TEST_BACKENDS", "torch=tests._driver_helpers")
    from experiments.backend import backend_modules

    assert backend_modules()["torch"] == "torch_impl"


def test_repeats_make_interleaved_cells_whose_first_repeat_keeps_its_key(tmp_path: Path) -> None:
    body = '[axes]\narch = ["lstm", "gru"]\nseq_len = [8, 16]\n[fixed]\nbackend = "torch"\nhidden = 8\n'
    once = load_grid(write_grid(tmp_path, "once", body)).cells()
    thrice = load_grid(write_grid(tmp_path, "thrice", "repeats = 3\n" + body)).cells()
    assert len(thrice) == 3 * len(once) == 12
    assert [c.repeat for c in thrice] == [0] * 4 + [1] * 4 + [2] * 4  # the whole grid, then again
    assert [c.key for c in thrice[:4]] == [c.key for c in once]  # stored records of repeat 0 still count
    assert len({c.key for c in thrice}) == 12
    assert [(c.arch, c.seq_len) for c in thrice[4:8]] == [(c.arch, c.seq_len) for c in once]
    with pytest.raises(UserError, match="repeats"):
        load_grid(write_grid(tmp_path, "zero", "repeats = 0\n" + body))
