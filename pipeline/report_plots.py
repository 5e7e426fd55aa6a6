"""Plots for the report as inline SVG (no files, no network), drawn with matplotlib's Agg backend."""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "jcorpus", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False})
KEPT, REJECTED = "#2b8a3e", "#c92a2a"


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def bar_chart(counts: Mapping[str, float], xlabel: str) -> str:
    names = list(counts)[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(names) + 0.8))
    ax.barh(names, [float(counts[n]) for n in names], color=REJECTED)  # floats: a huge int overflows int64
    ax.set_xlabel(xlabel)
    return _svg(fig)


def histograms(kept: Sequence[float], rejected: Sequence[float], xlabel: str, log: bool = False) -> str:
    """Kept and rejected on the same bins; the legend counts the values drawn (NaN and inf are not drawn).

    `log` is for counts (lengths): a log axis has no 0, so values below 1 (empty documents) get a bin of their
    own, [0, 1), on the linear part of a symlog axis; they were counted in the legend but drawn nowhere."""
    kept, rejected = (np.asarray(v, dtype=float) for v in (kept, rejected))
    kept, rejected = kept[np.isfinite(kept)], rejected[np.isfinite(rejected)]
    if log:  # a count below 0 is not one: clip it into the first bin rather than drop it from the bars
        kept, rejected = np.maximum(kept, 0), np.maximum(rejected, 0)
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    data = np.concatenate([kept, rejected])
    lo, hi = (float(data.min()), float(data.max())) if len(data) else (0.0, 1.0)
    if log and lo < 1:
        ax.set_xscale("symlog", linthresh=1, linscale=0.5)
        bins, span = np.concatenate([[0.0], np.geomspace(1, max(hi, 2), 40)]), None
    elif log:
        ax.set_xscale("log")
        bins, span = np.geomspace(lo, max(hi, 2), 40), None
    else:
        bins, span = 40, (lo, hi)
    ax.hist(kept, bins=bins, range=span, alpha=0.6, color=KEPT, label=f"kept ({len(kept):,})")
    ax.hist(rejected, bins=bins, range=span, alpha=0.6, color=REJECTED, label=f"rejected ({len(rejected):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    ax.legend(frameon=False)
    return _svg(fig)


def size_histogram(sizes: Mapping[str, int], xlabel: str) -> str:
    keys = sorted(sizes, key=int)
    fig, ax = plt.subplots(figsize=(6.5, 2.4))
    ax.bar([str(k) for k in keys], [sizes[k] for k in keys], color="#1971c2")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clusters")
    return _svg(fig)


def line_chart(xs: Sequence[float], series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    for name, ys in series.items():
        ax.plot(xs[: len(ys)], ys, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(frameon=False)
    return _svg(fig)
