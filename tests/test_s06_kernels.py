"""S6 per backend AND kernel: a like-with-like ratio and a mixed-kernel ratio are different rows with
their own verdicts, never pooled; schema-1 records (every torch cell "aten") still analyse."""

from __future__ import annotations

from _claims_helpers import bench

from experiments.claims import analyze
from experiments.claims.cost.s06_gru_vs_lstm import kernel, kernel_pairs
from experiments.claims.verdict import CONFIRMED, PARTLY, REFUTED

HIDDEN = (32, 64, 128)


def _cells(arch: str, step_s: float, exec_path: str, path: str, backend: str = "torch") -> list[dict]:
    return [
        bench("S6", step_s, arch=arch, hidden=h, backend=backend, path=path, exec_path=exec_path, schema=2)
        for h in HIDDEN
    ]


def _time_parts(res) -> dict[str, object]:
    """The time parts by row label (the part name before its colon), from the verdict parts table."""
    (parts,) = [t for t in res.tables if t.name == "S6_verdict_parts"]
    header = parts.columns
    out = {}
    for row in parts.rows:
        named = dict(zip(header, row, strict=True))
        name = str(named["part"])
        if "time LSTM/GRU" in name:
            out[name.split(":")[0]] = named
    return out


def _verdict(part: dict) -> str:
    """The part's verdict; a part that does not decide shows it in parentheses."""
    return str(part["verdict"]).strip("()")


def _kernel_records() -> list[dict]:
    """torch on CPU: aten LSTM 1.12 x the GRU (GRU faster: the claim holds like with like), onednn LSTM
    0.6 x (LSTM faster, by its kernel); jax scan vs scan 1.12."""
    return [
        *_cells("lstm", 1.12, "aten", "aten"),
        *_cells("lstm", 0.60, "onednn", "onednn"),
        *_cells("gru", 1.00, "aten", "aten"),
        *_cells("lstm", 1.12, "scan", "auto", backend="jax"),
        *_cells("gru", 1.00, "scan", "auto", backend="jax"),
    ]


def test_like_with_like_and_default_kernels_are_separate_rows() -> None:
    res = analyze("S6", _kernel_records())
    parts = _time_parts(res)
    assert set(parts) == {"torch aten vs aten", "torch onednn-LSTM vs aten-GRU", "jax scan vs scan"}
    assert _verdict(parts["torch aten vs aten"]) == CONFIRMED  # GRU faster, like with like
    assert _verdict(parts["torch onednn-LSTM vs aten-GRU"]) == REFUTED  # LSTM faster, by its kernel
    assert str(parts["torch aten vs aten"]["measured"]).startswith("1.12")
    assert str(parts["torch onednn-LSTM vs aten-GRU"]["measured"]).startswith("0.6")


def _time_table_names(res) -> list[str]:
    (parts,) = [t for t in res.tables if t.name == "S6_verdict_parts"]
    return [str(dict(zip(parts.columns, row, strict=True))["part"]) for row in parts.rows]


def test_the_mixed_pair_does_not_decide_where_like_with_like_exists() -> None:
    """Architecture verdict: like-with-like rows (and the parameter count) decide; the mixed row is
    evidence about kernels. Here both like-with-like rows confirm, so the claim is confirmed."""
    res = analyze("S6", _kernel_records())
    assert res.verdict == CONFIRMED
    parts = _time_parts(res)
    assert parts["torch onednn-LSTM vs aten-GRU"]["verdict"] == f"({REFUTED})"  # shown, not deciding
    assert parts["torch aten vs aten"]["verdict"] == CONFIRMED
    (mixed,) = [n for n in _time_table_names(res) if n.startswith("torch onednn-LSTM vs aten-GRU")]
    assert "what torch runs by default on CPU" in mixed


def test_a_mixed_pair_decides_when_it_is_the_only_time_measure() -> None:
    recs = [*_cells("lstm", 0.60, "onednn", "onednn"), *_cells("gru", 1.00, "aten", "aten")]
    assert analyze("S6", recs).verdict == PARTLY  # params hold, the only time row is refuted


def test_kernels_are_never_pooled() -> None:
    """Pooled, the two torch LSTMs (1.12 and 0.60) would give one ratio near their geometric mean
    (0.82); each row must show its own kernel's ratio and the table must say which pair."""
    res = analyze("S6", _kernel_records())
    measured = {k: str(v["measured"]) for k, v in _time_parts(res).items()}
    assert not any(m.startswith("0.8") for m in measured.values()), measured
    (table,) = [t for t in res.tables if t.name == "S6_lstm_vs_gru"]
    kernels = {(row[1], row[2]) for row in table.rows}
    assert kernels == {("torch", "aten / aten"), ("torch", "onednn / aten"), ("jax", "scan / scan")}


def test_schema1_records_still_analyse_and_read_as_onednn() -> None:
    """The committed records: schema 1, torch path "aten" for every cell; the float32 CPU LSTM ran oneDNN."""
    old = [bench("S6", 0.6, arch="lstm", hidden=h) for h in HIDDEN] + [
        bench("S6", 1.0, arch="gru", hidden=h) for h in HIDDEN
    ]
    assert [kernel(r) for r in old[:1] + old[-1:]] == ["onednn", "aten"]
    assert set(_time_parts(analyze("S6", old))) == {"torch onednn-LSTM vs aten-GRU"}
    # a schema-1 cell that asked for aten by name, or ran in float64, is what it says
    assert kernel(bench("S6", 1.0, arch="lstm", path="aten")) == "aten"
    assert kernel(bench("S6", 1.0, arch="lstm", precision="float64")) == "aten"
    assert kernel(bench("S6", 1.0, arch="lstm", schema=2)) == "aten"  # schema 2 names what ran


def test_kernel_pairs() -> None:
    assert kernel_pairs({"onednn", "aten"}, {"aten"}) == [("aten", "aten"), ("onednn", "aten")]
    assert kernel_pairs({"cudnn"}, {"cudnn"}) == [("cudnn", "cudnn")]
    assert kernel_pairs({"onednn"}, {"aten", "reference"}) == [("onednn", "aten"), ("onednn", "reference")]
