"""One function per figure. Each takes the summary tables and writes PDF and PNG.

Figures are sized for a paper column (3.4 in wide) and use one colour per method
throughout, so a reader can match curves across figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .analysis import speedup  # noqa: E402
from .io import atomic_path  # noqa: E402

COLUMN_WIDTH = 3.4
METHOD_STYLE = {
    "sgd": {"color": "#4d4d4d", "marker": "o", "label": "SGD"},
    "hb": {"color": "#1b75bc", "marker": "s", "label": "heavy ball"},
    "nag": {"color": "#d6604d", "marker": "^", "label": "Nesterov"},
}


def _style():
    sns.set_theme(context="paper", style="ticks", font_scale=0.9)
    plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "legend.frameon": False})


def save(fig, path: str | os.PathLike) -> None:
    """Write ``path`` (PDF) and the PNG beside it, each atomically."""
    path = Path(path)
    for target, kw in [(path, {}), (path.with_suffix(".png"), {"dpi": 200})]:
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=target.suffix[1:], **kw)
    plt.close(fig)


def _breakpoints(ax, meta, y_text=0.97):
    for key, label in [("B_sgd", r"$B^*_{\rm SGD}$"), ("B_sat", r"$B_{\rm sat}$")]:
        ax.axvline(meta[key], color="0.6", ls="--", lw=0.8, zorder=0)
        ax.text(
            meta[key],
            y_text,
            label,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=7,
            color="0.35",
            bbox={"fc": "white", "ec": "none", "pad": 0.5},
        )


def _log2_x(ax):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size $B$")


def tstar_vs_batch(tuned: pd.DataFrame, meta: dict, eps: float, path) -> None:
    """Grid-tuned iterations-to-eps against B, log-log; bars span the seeds."""
    _style()
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    for method, st in METHOD_STYLE.items():
        t = tuned[tuned["method"] == method].sort_values("batch_size")
        if t.empty:
            continue
        B, T = t["batch_size"].to_numpy(float), t["T_gmean"].to_numpy(float)
        # clip: the geometric mean of equal values can round a hair below them
        yerr = np.clip(np.vstack([T - t["T_min"], t["T_max"] - T]), 0, None)
        ax.errorbar(
            B,
            T,
            yerr=yerr,
            color=st["color"],
            marker=st["marker"],
            ms=3.5,
            lw=1.2,
            capsize=1.5,
            label=st["label"],
        )
    hb = tuned[tuned["method"] == "hb"].sort_values("batch_size")
    if not hb.empty:
        b0, t0 = float(hb["batch_size"].iloc[0]), float(hb["T_gmean"].iloc[0])
        Bref = np.array([b0, meta["B_sat"]])
        ax.plot(Bref, t0 * b0 / Bref, color="0.3", lw=0.7, ls=":", label=r"$\propto 1/B$")
    _breakpoints(ax, meta)
    _log2_x(ax)
    ax.set_yscale("log")
    ax.set_ylabel(rf"iterations to $\varepsilon={eps:g}$")
    ax.legend(fontsize=7, loc="lower left")
    sns.despine(fig)
    save(fig, path)


def speedup_vs_batch(tuned_runs: pd.DataFrame, meta: dict, path) -> None:
    """Momentum's speedup over SGD at equal B, paired by seed; band spans the seeds."""
    _style()
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.4))
    for method in ("hb", "nag"):
        if method not in set(tuned_runs["method"]):
            continue
        st = METHOD_STYLE[method]
        sp = speedup(tuned_runs, "sgd", method).sort_values("batch_size")
        B = sp["batch_size"].to_numpy(float)
        ax.plot(
            B,
            sp["ratio"],
            color=st["color"],
            marker=st["marker"],
            ms=3.5,
            lw=1.2,
            label=st["label"],
        )
        ax.fill_between(B, sp["ratio_min"], sp["ratio_max"], color=st["color"], alpha=0.2, lw=0)
    Bref = np.array([meta["B_sgd"], meta["B_sat"]])
    ax.plot(Bref, Bref / meta["B_sgd"], color="0.3", lw=0.7, ls=":", label=r"$\propto B$")
    ax.axhline(1.0, color="0.6", lw=0.6)
    _breakpoints(ax, meta)
    _log2_x(ax)
    ax.set_yscale("log")
    ax.set_ylabel(r"speedup $T_{\rm SGD}/T$")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, 0.9))
    sns.despine(fig)
    save(fig, path)


def loss_curves(curves: pd.DataFrame, meta: dict, batch_sizes, eps: float, path) -> None:
    """Relative loss against iterations at the tuned point, one panel per batch size.

    The line is the seeds' median at each recorded step (while all seeds still run),
    the band their range.
    """
    _style()
    batch_sizes = [b for b in batch_sizes if b in set(curves["batch_size"])]
    fig, axes = plt.subplots(
        1, len(batch_sizes), figsize=(2 * COLUMN_WIDTH, 1.9), sharey=True, squeeze=False
    )
    for ax, B in zip(axes[0], batch_sizes, strict=True):
        for method, st in METHOD_STYLE.items():
            c = curves[(curves["batch_size"] == B) & (curves["method"] == method)]
            if c.empty:
                continue
            steps, losses = _align(c)
            med = np.median(losses, axis=0)
            ax.plot(steps, med, color=st["color"], lw=1.0, label=st["label"])
            ax.fill_between(steps, losses.min(0), losses.max(0), color=st["color"], alpha=0.2, lw=0)
        ax.axhline(eps, color="0.6", lw=0.6, ls="--")
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(f"$B = {B}$", fontsize=8)
        ax.set_xlabel("iteration $t$")
    axes[0][0].set_ylabel(r"$f(x_t)/f(x_0)$")
    axes[0][0].legend(fontsize=6, loc="lower left")
    sns.despine(fig)
    save(fig, path)


def _align(c: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    # Runs of one config record the same steps until each stops: keep the common prefix.
    n = min(len(s) for s in c["curve_step"])
    steps = np.asarray(c["curve_step"].iloc[0][:n], float)
    losses = np.vstack([np.asarray(v[:n], float) for v in c["curve_loss"]])
    keep = steps > 0
    return steps[keep], losses[:, keep]
