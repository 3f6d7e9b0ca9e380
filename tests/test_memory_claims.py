"""Memory claims (S2, S4, S7, S9, S10) decided from ``saved_bytes``, per backend and kernel, on synthetic records."""

from __future__ import annotations

from typing import Any

import pytest
from _claims_helpers import bench

from experiments.claims import analyze
from experiments.claims.base import ClaimResult
from experiments.claims.cost.common import GiB
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, PARTLY, REFUTED, Part

TS = (100, 500, 1000, 2000)


def saved(claim: str, value: float, *, rss: float = 5e7, ratio: float = 2.0, **kw: Any) -> dict[str, Any]:
    """A schema-2 CPU bench record with ``saved_bytes`` = ``value`` (analytic count: value / ratio / 4 bytes)
    and a flat resident-memory reading, which must decide nothing."""
    metrics = {"saved_bytes": value, "saved_param_bytes": 1e4, "stored_activations": value / ratio / 4}
    metrics |= {"mem_kind": "cpu_rss_fresh", **kw.pop("metrics", {})}
    return bench(claim, kw.pop("step_s", 1.0), mem=rss, schema=2, metrics=metrics, **kw)


def parts(res: ClaimResult) -> dict[str, Part]:
    return {p.name: p for row in res.rows for p in row.verdict.parts}


def test_s2_saved_bytes_decide_per_kernel_and_resident_memory_does_not() -> None:
    recs = [saved("S2", 1e6 * t, seq_len=t, exec_path="onednn") for t in TS]
    recs += [saved("S2", 4e5 * t, seq_len=t, backend="jax", exec_path="scan") for t in TS]
    res = analyze("S2", recs)
    assert res.verdict == CONFIRMED  # the flat RSS column would have refuted it
    names = parts(res)
    assert {"torch onednn: exponent of saved bytes vs T", "jax scan: exponent of saved bytes vs T"} <= set(names)
    assert not any("resident memory" in p.reason for p in names.values())
    flat = [saved("S2", 5e8, seq_len=t, exec_path="onednn") for t in TS]
    assert analyze("S2", flat).verdict == REFUTED


def test_s2_transformer_exponent_is_shown_not_deciding() -> None:
    recs = [saved("S2", 1e6 * t, seq_len=t, exec_path="onednn") for t in TS]
    recs += [saved("S2", 1e3 * t * t, arch="transformer", seq_len=t, exec_path="reference") for t in TS]
    res = analyze("S2", recs)
    shown = parts(res)["torch reference: Transformer exponent of saved bytes vs T"]
    assert not shown.decides and shown.verdict == CONFIRMED and res.verdict == CONFIRMED


def test_storage_ratio_table_names_each_kernel() -> None:
    recs = [saved("S2", 1e6 * t, seq_len=t, ratio=2.3, exec_path="onednn") for t in TS]
    recs += [saved("S2", 1e6 * t, seq_len=t, ratio=1.02, backend="jax", exec_path="scan") for t in TS]
    res = analyze("S2", recs)
    table = next(t for t in res.tables if t.name == "S2_storage_ratio")
    assert {(r[1], r[2], r[6]) for r in table.rows} == {("torch", "onednn", "2.3"), ("jax", "scan", "1.02")}
    assert "torch onednn lstm (cpu) x2.3" in res.text and "jax scan lstm (cpu) x1.02" in res.text


@pytest.mark.parametrize(("mem_ratio", "verdict"), [(1.95, CONFIRMED), (1.0, REFUTED), (4.0, PARTLY)])
def test_s7_memory_from_saved_bytes_on_one_kernel(mem_ratio: float, verdict: str) -> None:
    recs = []
    for h in (32, 64):
        for kern in ("onednn", "aten"):
            recs.append(saved("S7", 1e6 * h, arch="lstm", hidden=h, exec_path=kern, path=kern))
            recs.append(
                saved("S7", mem_ratio * 1e6 * h, arch="bilstm", hidden=h, exec_path=kern, path=kern, step_s=1.9)
            )
    got = parts(analyze("S7", recs))
    for kern in ("onednn", "aten"):
        assert got[f"torch: saved bytes BiLSTM/LSTM, {kern}"].verdict == verdict


def test_s7_never_pairs_memory_across_kernels() -> None:
    recs = [saved("S7", 1e6, arch="lstm", exec_path="onednn"), saved("S7", 2e6, arch="bilstm", exec_path="aten")]
    recs[1]["config"]["path"] = "aten"
    assert not [n for n in parts(analyze("S7", recs)) if "saved bytes" in n]


def _s10(backend: str, kern: str, path: str, grow: Any, ts: tuple[int, ...] = (256, 512, 1024)) -> list[dict]:
    kw = {"arch": "transformer", "backend": backend, "exec_path": kern, "path": path}
    return [saved("S10", grow(t), seq_len=t, **kw) for t in ts]


def test_s10_plain_quadratic_fused_linear_and_jax_finding() -> None:
    recs = _s10("torch", "reference", "off", lambda t: 1e3 * t * t) + _s10(
        "torch", "fused_attention", "on", lambda t: 1e5 * t
    )
    recs += _s10("jax", "reference", "off", lambda t: 2e3 * t * t)
    recs += _s10("jax", "fused_attention", "on", lambda t: 2e3 * t * t)  # jax on CPU: the same bytes
    res = analyze("S10", recs)
    got = parts(res)
    assert got["torch reference: plain attention, exponent T=512->1024"].verdict == CONFIRMED
    assert got["torch fused_attention: fused attention, exponent T=512->1024"].verdict == REFUTED
    assert got["torch: plain / fused growth T=512->1024"].verdict == CONFIRMED
    finding = got["jax: plain / fused growth T=512->1024"]
    assert not finding.decides and "saves what the plain path saves" in finding.reason
    assert res.verdict == PARTLY  # quadratic with plain attention, not with torch's fused kernel


def test_s10_refuted_when_plain_attention_does_not_grow_faster() -> None:
    recs = _s10("torch", "reference", "off", lambda t: 1e5 * t) + _s10(
        "torch", "fused_attention", "on", lambda t: 1e3 * t * t
    )
    res = analyze("S10", recs)
    assert res.verdict == REFUTED
    assert parts(res)["torch: plain / fused growth T=512->1024"].verdict == REFUTED


@pytest.mark.parametrize(("values", "verdict"), [(256_000, CONFIRMED), (1_536_000, PARTLY)])
def test_s4_values_per_sample_from_saved_bytes(values: int, verdict: str) -> None:
    b = 8
    recs = [
        saved("S4", values * 4 * b * (t / 1000) * (h / 256), seq_len=t, hidden=h, batch=b, exec_path="onednn")
        for t in (250, 500, 1000)
        for h in (64, 256)
    ]
    res = analyze("S4", recs)
    got = parts(res)
    assert got["torch onednn: lstm saved bytes values per sample at T=1000, H=256"].verdict == verdict
    assert (
        got["torch onednn: lstm saved bytes exponent of memory per sample vs T (other=(256, 8))"].verdict == CONFIRMED
    )
    assert res.verdict == verdict


def test_s4_per_sample_memory_growing_with_batch_is_not_confirmed() -> None:
    recs = [saved("S4", 1e3 * b * b, batch=b, exec_path="onednn") for b in (4, 16)]  # per sample x4 over B
    got = parts(analyze("S4", recs))
    assert got["torch onednn: lstm saved bytes exponent of memory per sample vs B (other=(100, 32))"].verdict == PARTLY


def _s9(at512_gib: float, layers: int = 2, batch: int = 4, ts: tuple[int, ...] = (64, 128)) -> list[dict]:
    """CPU records at d=768 with quadratic saved bytes reaching ``at512_gib`` at T=512, B=32."""
    scale = at512_gib * GiB * batch / 32 / 512**2
    kw = {"arch": "transformer", "hidden": 768, "batch": batch, "spec": {"num_layers": layers}}
    return [saved("S9", scale * t * t, seq_len=t, metrics={"param_count": 1000}, **kw) for t in ts]


@pytest.mark.parametrize(("at512", "verdict"), [(32.0, CONFIRMED), (8.0, REFUTED), (17.0, INCONCLUSIVE)])
def test_s9_extrapolated_from_saved_bytes(at512: float, verdict: str) -> None:
    res = analyze("S9", _s9(at512))
    cpu = next(row for row in res.rows if row.device.startswith("cpu"))  # a GPU claim: the GPU row heads
    assert cpu.verdict.verdict == verdict
    part = next(p for p in cpu.verdict.parts if p.name.endswith("extrapolated"))
    assert part.decides and "extrapolated" in part.measured
    assert any(t.name == "S9_extrapolated" for t in res.tables)


@pytest.mark.parametrize(("grow", "verdict"), [(1.0, CONFIRMED), (0.0, REFUTED)])
def test_s11_memory_from_saved_bytes_decides_on_cpu(grow: float, verdict: str) -> None:
    """Saved bytes grow with B (grow=1) or stay flat (grow=0): exact, so they decide on a CPU, where a
    resident-memory reading would be capped at inconclusive."""
    recs = []
    for b in (8, 32, 128):
        for seed in range(3):  # throughput x4 per 4x batch: confirmed in both cases
            recs.append(saved("S11", 1e6 * b**grow, batch=b, seed=seed, step_s=0.01 * b**0.5, exec_path="onednn"))
    got = parts(analyze("S11", recs))
    assert got["torch onednn: lstm memory"].verdict == verdict
    assert got["torch onednn: lstm throughput"].verdict == CONFIRMED
    rss = {"mem_kind": "cpu_rss"}
    legacy = [
        bench("S11", 0.01 * b**0.5, mem=1e6 * b, batch=b, seed=s, metrics=rss) for b in (8, 128) for s in range(3)
    ]
    capped = parts(analyze("S11", legacy))["torch onednn: lstm memory"]
    assert capped.verdict == INCONCLUSIVE and "resident memory" in capped.reason


def test_s8_ratio_within_one_kernel_with_the_shape_that_ran() -> None:
    recs = [
        bench("S8", t, hidden=h, batch=64, seq_len=25, seed=s, exec_path=kern, path=kern)
        for kern, times in (("onednn", {1024: 1.0, 2048: 3.6}), ("aten", {1024: 1.0, 2048: 1.2}))
        for h, t in times.items()
        for s in range(3)
    ]
    got = parts(analyze("S8", recs))
    assert got["torch onednn: lstm H=2048/H=1024 (B=64, T=25)"].verdict == CONFIRMED
    assert got["torch aten: lstm H=2048/H=1024 (B=64, T=25)"].verdict == PARTLY  # faster, not 2x
