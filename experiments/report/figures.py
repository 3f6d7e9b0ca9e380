"""Figures from ``FigureSpec``: matplotlib (Agg), PNG and SVG, deterministic.

Determinism: no dates or software versions in the files' metadata, a fixed
``svg.hashsalt``, glyphs drawn as paths, fixed size and DPI. The same specs give
the same bytes on the same matplotlib.
"""

from __future__ import annotations

import math
from pathlib import Path

from experiments.claims.base import FigureSpec, Panel

DPI = 100
RC = {
    "svg.hashsalt": "seqbench",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 6,
    "figure.max_open_warning": 0,
    "path.simplify": False,
}


def _finite(xs, ys, logx: bool, logy: bool, lo=None, hi=None):
    keep = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=False)):
        if x is None or y is None:
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        if (logx and x <= 0) or (logy and y <= 0):
            continue
        keep.append(i)
    pick = lambda seq: [seq[i] for i in keep] if seq is not None else None  # noqa: E731
    return (
        pick(list(xs)),
        pick(list(ys)),
        pick(list(lo) if lo is not None else None),
        pick(list(hi) if hi is not None else None),
    )


def _draw(ax, panel: Panel) -> None:
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    if panel.image is not None:
        im = ax.imshow(panel.image, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.figure.colorbar(im, ax=ax)
        return
    drawn = False
    for s in panel.series:
        x, y, lo, hi = _finite(s.x, s.y, panel.logx, panel.logy, s.lo, s.hi)
        if not x:
            continue
        line = ax.plot(x, y, s.style, label=s.label, markersize=3, linewidth=1)[0]
        if lo is not None and hi is not None:
            band = [(a, b, c) for a, b, c in zip(x, lo, hi, strict=True) if math.isfinite(b) and math.isfinite(c)]
            if panel.logy:
                band = [(a, b, c) for a, b, c in band if b > 0 and c > 0]
            if band:
                bx, blo, bhi = zip(*band, strict=True)
                ax.fill_between(bx, blo, bhi, color=line.get_color(), alpha=0.2, linewidth=0)
        drawn = True
    for value, label in panel.hlines:
        if math.isfinite(value) and not (panel.logy and value <= 0):
            ax.axhline(value, color="0.5", linestyle="--", linewidth=0.8, label=label)
    if panel.logx and drawn:
        ax.set_xscale("log")
    if panel.logy and drawn:
        ax.set_yscale("log")
    if not drawn:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="best", frameon=False)
    ax.grid(True, which="major", linewidth=0.3, alpha=0.5)


def render(spec: FigureSpec, out_dir: Path) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.svg``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = spec.panels or [Panel("(no data)", "", "")]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    out_dir.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i < len(panels):
                _draw(ax, panels[i])
            else:
                ax.axis("off")
        fig.tight_layout()
        png, svg = out_dir / f"{spec.name}.png", out_dir / f"{spec.name}.svg"
        fig.savefig(png, dpi=DPI, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return [png, svg]
