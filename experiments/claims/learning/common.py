"""What the learning-dynamics claims (L1-L17) share: scores, seed pairing, their records.

Conventions:
- A run's score is its final validation metric (accuracy, or MSE); ``error`` is
  1 - accuracy or the MSE. A run that diverged or hit NaN is a result: it scores the
  task's trivial baseline (what a model that learnt nothing gets). Cells that failed
  with an error are left out and listed.
- Comparisons between two settings are paired by seed (same data and initial weights
  where the architectures allow) and reported as the mean difference with a Student-t
  95% interval over seeds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from experiments.claims import common as claims_common
from experiments.claims.base import fmt
from experiments.claims.learning.rules import OPTIMIZER_NAMES, control
from experiments.claims.stats import Estimate, mean_ci
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, NOT_RUN, REFUTED, Judgement, describe
from experiments.records import fields as R
from experiments.records.fields import Record

FAILED = ("nan", "diverged")


def is_classification(rec: Record) -> bool:
    """Accuracy (higher is better) rather than MSE: the train cell's ``metric``, else the head."""
    metric_name = R.metric(rec, "metric")
    if metric_name is not None:
        return metric_name == "accuracy"
    return str(R.spec_field(rec, "head_kind", "classify")).endswith("classify")


def usable(rec: Record) -> bool:
    return R.ok(rec) or rec.get("status") in FAILED


def failed(rec: Record) -> bool:
    return rec.get("status") in FAILED or bool(R.metric(rec, "diverged", False))


def score(rec: Record) -> float:
    """Final validation metric; the trivial baseline's for a run that diverged or hit NaN."""
    value = R.fmetric(rec, "final_val_metric")
    if failed(rec) or not math.isfinite(value):
        return R.fmetric(rec, "baseline_metric")
    return value


def error(rec: Record) -> float:
    s = score(rec)
    return 1.0 - s if is_classification(rec) else s


def rel_error(rec: Record) -> float:
    """Error over the trivial baseline's error: scale-free (1 = learnt nothing)."""
    base = R.fmetric(rec, "baseline_metric")
    base_err = 1.0 - base if is_classification(rec) else base
    return error(rec) / base_err if base_err else math.nan


FLOOR = 0.9  # an arm whose mean error is still >= 90% of the trivial predictor's has learnt nothing


def unless_at_floor(j: Judgement, *arms: Sequence[Record]) -> Judgement:
    """``j``, unless every arm is still at the trivial predictor (mean ``rel_error`` >= ``FLOOR``): two
    arms that both learnt nothing show no difference whatever the claim, so neither "no effect" nor an
    effect can be read from them (e.g. every forget bias at T=400 within the adding budget)."""
    means = [seed_mean(a, rel_error).value for a in arms if a]
    if not means or not all(m >= FLOOR for m in means):
        return j
    why = f"no arm learnt (error >= {FLOOR:g} of the trivial predictor's in each): the budget cannot show a difference"
    return Judgement(INCONCLUSIVE, f"{j.reason}; but {why}")


def curve(rec: Record, name: str) -> tuple[list[float], list[float]]:
    """A train cell's curve (``metrics["curves"][name]``: steps and values); empty when absent."""
    data = (rec.get("metrics", {}).get("curves") or {}).get(name) or {}
    steps, values = data.get("step") or [], data.get("value") or []
    if len(steps) != len(values):
        return [], []
    return [float(x) for x in steps], [math.nan if v is None else float(v) for v in values]


def per_seed(recs: Sequence[Record], fn: Callable[[Record], float]) -> dict[tuple[str, int], float]:
    """fn per run, keyed by (backend, seed): a seed on each backend is a run of its own."""
    out: dict[tuple[str, int], list[float]] = {}
    for r in recs:
        out.setdefault((R.backend(r), R.seed(r)), []).append(fn(r))
    return {s: float(np.mean(v)) for s, v in sorted(out.items())}


def paired(a: Sequence[Record], b: Sequence[Record], fn: Callable[[Record], float]) -> Estimate:
    """mean over runs of fn(a) - fn(b), t interval; runs (backend, seed) present on both sides only."""
    sa, sb = per_seed(a, fn), per_seed(b, fn)
    common = sorted(set(sa) & set(sb))
    return mean_ci([sa[s] - sb[s] for s in common])


def seed_mean(recs: Sequence[Record], fn: Callable[[Record], float]) -> Estimate:
    return mean_ci(list(per_seed(recs, fn).values()))


def task_label(rec: Record) -> str:
    name = str(R.cfg(rec, "task"))
    extra = R.task_param(rec, "dataset") or R.task_param(rec, "series")
    return f"{name}:{extra}" if extra else name


def errored(rec: Record) -> bool:
    """Failed with an error: the only cells a learning claim lists as not finished (a nan or diverged
    run is a result, scored at the baseline)."""
    return rec.get("status") == "error"


finish = functools.partial(claims_common.finish, listed=errored)


# A claim's verdict comes from its most thorough preset with records, per device: the standard
# preset's budgets supersede the quick preset's (which stay in their files, and in `seqbench compare`).
PRESET_RANK = {"quick": 0, "standard": 1, "full": 2}


@functools.lru_cache(maxsize=1)
def _grid_rank() -> dict[str, int]:
    from experiments.grid import raw_lists  # the grid files' presets, read from their TOML alone

    return {name: max((PRESET_RANK.get(p, -1) for p in ps), default=-1) for name, ps in raw_lists("presets").items()}


def most_thorough(recs: Sequence[Record]) -> list[Record]:
    """Per device, the records of the highest-ranked preset present (full > standard > quick)."""
    ranks = _grid_rank()
    out: list[Record] = []
    for dev in R.devices(recs):
        mine = [r for r in recs if R.device(r) == dev]
        top = max(ranks.get(str(r.get("grid")), -1) for r in mine)
        out += [r for r in mine if ranks.get(str(r.get("grid")), -1) == top]
    return out


def train_records(
    records: Sequence[Record], claim_id: str, kinds: tuple[str, ...] = ("train",)
) -> tuple[list[Record], list[Record]]:
    """A claim's records (its most thorough preset's, per device) and those a verdict may use."""
    recs = most_thorough(R.select(records, claim_id, kinds=kinds))
    return recs, [r for r in recs if usable(r)]


def seeds_note(recs: Sequence[Record]) -> str:
    seeds = sorted({R.seed(r) for r in recs})
    return f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"


def absolute(est: Estimate) -> Estimate:
    """|x| with its interval: [0, max|bound|] when the interval holds 0."""
    if not est.has_ci:
        return Estimate(abs(est.value), n=est.n)
    a, b = abs(est.lo), abs(est.hi)
    lo = 0.0 if est.lo <= 0 <= est.hi else min(a, b)
    return Estimate(abs(est.value), lo, max(a, b), est.n, est.method)


def judge_none(est: Estimate, margin: float, what: str) -> Judgement:
    """No improvement claimed: confirmed when the interval stays below ``margin``."""
    lo, hi = est.bounds()
    if not math.isfinite(est.value):
        return Judgement(NOT_RUN, "no measurement")
    if hi < margin:
        return Judgement(CONFIRMED, f"{what} {describe(est)} stays below +{fmt(margin)}")
    if lo > margin:
        return Judgement(REFUTED, f"{what} {describe(est)} improves by more than {fmt(margin)}")
    return Judgement(INCONCLUSIVE, f"{what} {describe(est)} straddles +{fmt(margin)}; more seeds decide")


def train_loss(rec: Record) -> float:
    return R.fmetric(rec, "final_train_loss")


def learnt(rec: Record) -> bool:
    """The run reached its task's solved level (the record's ``threshold``) by its last evaluation."""
    value, level = R.fmetric(rec, "final_val_metric"), R.fmetric(rec, "threshold")
    if failed(rec) or not (math.isfinite(value) and math.isfinite(level)):
        return False
    return value >= level if is_classification(rec) else value <= level


def criterion(rec: Record) -> str:
    """``learnt`` in words, for the control's sentence."""
    sign = ">=" if is_classification(rec) else "<="
    return f"validation {R.metric(rec, 'metric', 'metric')} {sign} {fmt(R.fmetric(rec, 'threshold'))} at the end"


def values(recs: Sequence[Record], fn: Callable[[Record], Any]) -> str:
    """The distinct values of fn over records, sorted, as "a, b, c"."""
    seen = sorted({fn(r) for r in recs}, key=lambda v: (v is None, str(type(v)), v if v is not None else 0))
    return ", ".join(fmt(v) if isinstance(v, float) else str(v) for v in seen)


def budget(recs: Sequence[Record]) -> str:
    """The training budget the records ran at: steps, optimizer and lr, sizes, batch, train-set size."""
    if not recs:
        return "-"
    opt = {OPTIMIZER_NAMES.get(str(R.opt(r, "name", "adam")), str(R.opt(r, "name"))) for r in recs}
    n_train = values(recs, lambda r: R.task_param(r, "n_train"))
    return (
        f"{values(recs, lambda r: R.setting(r, 'steps'))} steps, {'/'.join(sorted(opt))} lr "
        f"{values(recs, lambda r: float(R.opt(r, 'lr')))}, H={values(recs, R.size)}, "
        f"B={values(recs, lambda r: R.cfg(r, 'batch'))}"
        + (f", {n_train} training sequences" if n_train != "None" else "")
    )


def shortest(recs: Sequence[Record], where: Callable[[Record], bool]) -> list[Record]:
    """The records matching ``where`` at their shortest T: a positive control's usual setting."""
    mine = [r for r in recs if where(r)]
    if not mine:
        return []
    t0 = min((R.seq_len(r) or 0) for r in mine)
    return [r for r in mine if (R.seq_len(r) or 0) == t0]


def controlled(
    judge: Callable[[list[Record], str], tuple[list, str]],
    pick: Callable[[list[Record]], tuple[list[Record], str]],
    sentences: list[str],
) -> Callable[[list[Record], str], tuple[list, str]]:
    """``judge`` behind the claim's positive control (``rules``): ``pick(device_records)`` returns the
    control's records and its setting in words; the control's part comes first and its sentence is
    appended to ``sentences`` (the claim's text). Use with ``device_rows(..., combine_fn=rules.judged)``."""

    def wrapped(dev_recs: list[Record], dev: str) -> tuple[list, str]:
        recs, setting = pick(dev_recs)
        criteria = "; ".join(sorted({criterion(r) for r in recs})) or "-"  # one per task where several
        ctrl = control(recs, learnt, setting, criteria, budget(recs))
        sentences.append(ctrl.sentence())
        parts, measured = judge(dev_recs, dev)
        return [ctrl.part(), *parts], measured

    return wrapped
