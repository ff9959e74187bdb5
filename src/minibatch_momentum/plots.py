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


# --------------------------------------------------------------------------------------
# Exact theory beside the sweeps
# --------------------------------------------------------------------------------------


def _tuned_markers(ax, tuned: pd.DataFrame, method: str, **style) -> None:
    """Grid-tuned ``T*(B)`` of ``method`` as open markers, bars spanning the seeds."""
    t = tuned[tuned["method"] == method].sort_values("batch_size")
    if t.empty:
        return
    st = METHOD_STYLE[method]
    T = t["T_gmean"].to_numpy(float)
    # clip: the geometric mean of equal values can round a hair below them
    yerr = np.clip(np.vstack([T - t["T_min"], t["T_max"] - T]), 0, None)
    ax.errorbar(
        t["batch_size"],
        T,
        yerr=yerr,
        color=st["color"],
        marker=st["marker"],
        ls="none",
        mfc="white",
        **style,
    )


def _exact(exact: pd.DataFrame, method: str) -> pd.DataFrame:
    return exact[exact["method"] == method].sort_values("batch_size")


def theory_vs_empirical(
    tuned: pd.DataFrame, exact: pd.DataFrame, knees: dict, meta: dict, eps: float, path
) -> None:
    """Exact tuned ``T*(B)`` (lines) over the grid-tuned sweep results (markers; bars span
    the seeds), for every method.

    The lines are the Gaussian-rows theory: ``T* = log(1/eps) / log(1/rho*)`` with
    ``rho*`` the exact mean-square rate at the rate-optimal constant ``(eta, beta)``,
    computed from the problem's eigenvalues, ``n`` and sampler (exact for Gaussian rows,
    an approximation for this finite matrix; nothing fitted). Coloured dotted verticals:
    the exact breakpoints (``T*`` twice the noise-free count); grey dashed: the
    closed-form ``B*_SGD`` and ``B_sat``.
    """
    _style()
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    for method, st in METHOD_STYLE.items():
        e = _exact(exact, method)
        if not e.empty:
            ax.plot(e["batch_size"], e["T_rate"], color=st["color"], lw=1.1, label=st["label"])
        _tuned_markers(ax, tuned, method, ms=3.5, capsize=1.5, mew=0.9)
        k = (knees or {}).get(method)
        if k is not None and np.isfinite(float(k)):
            ax.axvline(float(k), color=st["color"], ls=":", lw=0.9, zorder=0)
    ax.plot([], [], color="0.3", lw=1.1, label="exact theory")
    ax.plot([], [], color="0.3", marker="o", mfc="white", ls="none", ms=3.5, label="sweep (tuned)")
    ax.plot([], [], color="0.3", ls=":", lw=0.9, label="exact knee")
    _breakpoints(ax, meta)
    _log2_x(ax)
    ax.set_yscale("log")
    ax.set_ylabel(rf"iterations to $\varepsilon={eps:g}$")
    ax.legend(fontsize=6, loc="lower left", ncol=2)
    sns.despine(fig)
    save(fig, path)


def rule_vs_grid(
    tuned: pd.DataFrame,
    rule: pd.DataFrame,
    exact: pd.DataFrame,
    meta: dict,
    eps: float,
    factor: float,
    path,
    methods=("hb", "nag"),
) -> None:
    """The momentum rule against the grid-searched best, per momentum method.

    Top: iterations to ``eps`` of the grid-best point (filled markers), of the rule's
    point run in the same shards on the same mini-batches (open markers), and the exact
    count of the rule's point (dashed: first ``t`` with ``E f(x_t) <= eps f(x_0)``,
    Gaussian-rows theory). Bottom: ``T_rule / T_grid-best`` from the sweeps (markers)
    and the exact asymptotic ratio ``T_rule / T*`` (dashed), with the claim's tolerance.
    Geometric means over seeds.
    """
    _style()
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(COLUMN_WIDTH, 3.6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for method in methods:
        st = METHOD_STYLE[method]
        g = tuned[tuned["method"] == method].set_index("batch_size").sort_index()
        r = (
            rule[rule["method"] == method].set_index("batch_size").sort_index()
            if not rule.empty
            else pd.DataFrame()
        )
        e = _exact(exact, method).set_index("batch_size")
        if g.empty:
            continue
        kw = {"color": st["color"], "marker": st["marker"], "ms": 3.5}
        ax.plot(g.index, g["T_gmean"], lw=1.0, label=f"{st['label']}: grid-best", **kw)
        if not r.empty:
            ax.plot(
                r.index,
                r["T_gmean"],
                ls="none",
                mfc="white",
                mew=0.9,
                label=f"{st['label']}: rule",
                **kw,
            )
            common = g.index.intersection(r.index)
            bx.plot(
                common,
                r.loc[common, "T_gmean"] / g.loc[common, "T_gmean"],
                lw=1.0,
                mfc="white",
                mew=0.9,
                **kw,
            )
        if not e.empty and e["rule_T_curve"].notna().any():
            ax.plot(e.index, e["rule_T_curve"], color=st["color"], ls="--", lw=0.9)
            bx.plot(e.index, e["rule_T_rate"] / e["T_rate"], color=st["color"], ls="--", lw=0.9)
    ax.plot([], [], color="0.3", ls="--", lw=0.9, label="rule, exact theory")
    bx.axhline(factor, color="0.35", lw=0.8, ls="-.")
    bx.text(
        1.0,
        factor,
        f" {factor:g}x",
        transform=bx.get_yaxis_transform(),
        fontsize=6,
        va="center",
        ha="left",
        color="0.35",
    )
    bx.axhline(1.0, color="0.6", lw=0.6)
    _breakpoints(ax, meta)
    ax.set_yscale("log")
    ax.set_ylabel(rf"iterations to $\varepsilon={eps:g}$")
    ax.legend(fontsize=6, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    _log2_x(bx)
    bx.set_ylabel(r"$T_{\rm rule}/T_{\rm grid\,best}$")
    lo, hi = bx.get_ylim()
    bx.set_ylim(min(lo, 0.8), max(hi, factor * 1.15))
    sns.despine(fig)
    save(fig, path)


def rate_heatmap(
    maps: pd.DataFrame,
    tuned: pd.DataFrame,
    exact: pd.DataFrame,
    meta: dict,
    path,
    method: str = "hb",
) -> None:
    """Exact asymptotic rate over ``(eta L, 1 - beta)`` at a few batch sizes (one panel
    each): colour is ``log10(1 - rho)`` of the second moments (Gaussian-rows theory; grey
    where ``rho >= 1``, i.e. the mean square diverges). Marked: the momentum rule's point
    (x), the grid-searched best of the sweep (o) and the exact optimum (+).
    """
    _style()
    sizes = sorted(set(maps["batch_size"]))
    fig, axes = plt.subplots(
        1,
        len(sizes),
        figsize=(2 * COLUMN_WIDTH, 2.1),
        sharey=True,
        squeeze=False,
        constrained_layout=True,
    )
    L = float(meta["L"])
    gap = np.log10(np.clip(1.0 - maps["rho"].to_numpy(float), 1e-300, None))
    vmin = float(np.nanmin(np.where(maps["rho"] < 1, gap, np.nan)))
    vmax = float(np.nanmax(np.where(maps["rho"] < 1, gap, np.nan)))
    mesh = None
    for ax, B in zip(axes[0], sizes, strict=True):
        m = maps[maps["batch_size"] == B]
        x = np.unique(m["eta"].to_numpy(float) * L)
        y = np.unique(1.0 - m["beta"].to_numpy(float))
        piv = m.assign(x=m["eta"] * L, y=1.0 - m["beta"]).pivot_table(
            index="y", columns="x", values="rho"
        )
        rho = piv.reindex(index=y, columns=x).to_numpy(float)
        Z = np.ma.masked_where(~(rho < 1), np.log10(np.clip(1 - rho, 1e-300, None)))
        ax.set_facecolor("0.82")
        mesh = ax.pcolormesh(x, y, Z, cmap="viridis", vmin=vmin, vmax=vmax, shading="nearest")
        e = exact[(exact["method"] == method) & (exact["batch_size"] == B)]
        if not e.empty:
            ax.plot(e["rule_eta"] * L, 1 - e["rule_beta"], "x", color="white", ms=6, mew=1.6)
            ax.plot(
                e["rule_eta"] * L,
                1 - e["rule_beta"],
                "x",
                color="black",
                ms=5,
                mew=0.9,
                label="rule",
            )
            ax.plot(
                e["eta"] * L,
                1 - e["beta"],
                "+",
                color="#d6604d",
                ms=7,
                mew=1.2,
                label="exact optimum",
            )
        t = tuned[(tuned["method"] == method) & (tuned["batch_size"] == B)]
        if not t.empty:
            ax.plot(
                t["eta"] * L,
                1 - t["beta"],
                "o",
                mfc="none",
                mec="white",
                ms=6,
                mew=1.2,
                label="grid-best",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"$B = {B}$", fontsize=8)
        ax.set_xlabel(r"$\eta L$")
    axes[0][0].set_ylabel(r"$1-\beta$")
    axes[0][0].legend(fontsize=6, loc="lower left", facecolor="0.9", frameon=True)
    if mesh is not None:
        cb = fig.colorbar(mesh, ax=axes[0].tolist(), shrink=0.9, pad=0.01)
        cb.set_label(r"$\log_{10}(1-\rho)$", fontsize=7)
        cb.ax.tick_params(labelsize=6)
    save(fig, path)


def exact_vs_monte_carlo(mc: pd.DataFrame, path) -> None:
    """Exact ``E f(x_t) / f(x_0)`` (dashed black, finite-sample operator of this ``A``)
    over the mean of independent runs of the engine (solid) and its confidence band
    (shaded), one colour per method at the momentum rule's point; dotted: the same
    ``(eta, beta)`` without gradient noise (full batch), for scale. Bottom: the Monte
    Carlo mean and band relative to the exact curve (0 = exact).
    """
    _style()
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(COLUMN_WIDTH, 3.4), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for method in dict.fromkeys(mc["method"]):
        st = METHOD_STYLE[method]
        d = mc[mc["method"] == method].sort_values("step")
        t = d["step"].to_numpy(float)
        exact, mean = d["exact"].to_numpy(float), d["mc_mean"].to_numpy(float)
        lower, upper = d["lower"].to_numpy(float), d["upper"].to_numpy(float)
        B, runs = int(d["batch_size"].iloc[0]), int(d["runs"].iloc[0])
        conf = float(d["confidence"].iloc[0])
        ax.fill_between(
            t, np.clip(lower, mean * 1e-3, None), upper, color=st["color"], alpha=0.3, lw=0
        )
        ax.plot(
            t, mean, color=st["color"], lw=0.9, label=f"{st['label']}, $B={B}$: mean of {runs} runs"
        )
        ax.plot(t, exact, color="black", ls="--", lw=0.8)
        ax.plot(t, d["noise_free"], color=st["color"], ls=":", lw=0.8)
        bx.fill_between(
            t,
            lower / exact - 1,
            upper / exact - 1,
            color=st["color"],
            alpha=0.3,
            lw=0,
        )
        bx.plot(t, mean / exact - 1, color=st["color"], lw=0.7)
    ax.plot([], [], color="black", ls="--", lw=0.8, label="exact (finite-sample operator)")
    ax.plot([], [], color="0.4", ls=":", lw=0.8, label="without gradient noise")
    ax.set_yscale("log")
    ax.set_ylabel(r"$\mathbb{E} f(x_t)/f(x_0)$")
    ax.legend(fontsize=5.5, loc="upper right")
    bx.axhline(0.0, color="black", ls="--", lw=0.8)
    bx.text(
        0.99,
        0.97,
        f"shaded: {100 * conf:g}% band of the mean",
        transform=bx.transAxes,
        ha="right",
        va="top",
        fontsize=6,
        color="0.35",
    )
    bx.set_xlabel("iteration $t$")
    bx.set_ylabel("Monte Carlo / exact $-$ 1", fontsize=7)
    sns.despine(fig)
    save(fig, path)


def tstar_grid(panels: list[dict], eps: float, path, ncols: int = 3) -> None:
    """``T*(B)`` of every (problem, sampler) pair, one panel each: grid-tuned sweeps
    (markers, bars span the seeds), the theory where the sampler has one (lines: steps
    until the expected loss reaches ``eps`` at the rate-optimal constant ``(eta, beta)``,
    which counts the problem's own initial error, unlike the asymptotic-rate count), its
    breakpoints (coloured dotted) and the closed-form ``B*_SGD``, ``B_sat`` (grey).

    ``panels``: dicts with ``title``, ``tuned`` and ``meta`` (a summary's), and
    optionally ``exact`` (the theory's ``tstar`` table) and ``knees``.
    """
    _style()
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.3 * ncols, 2.0 * nrows), squeeze=False, constrained_layout=True
    )
    for ax, panel in zip(axes.flat, panels, strict=False):
        tuned, exact, knees = panel["tuned"], panel.get("exact"), panel.get("knees") or {}
        for method, st in METHOD_STYLE.items():
            if exact is not None:
                e = _exact(exact, method)
                if not e.empty:
                    ax.plot(e["batch_size"], e["T_curve"], color=st["color"], lw=1.0)
            _tuned_markers(ax, tuned, method, ms=2.8, capsize=1.2, mew=0.8, label=st["label"])
            k = knees.get(method)
            if k is not None and np.isfinite(float(k)):
                ax.axvline(float(k), color=st["color"], ls=":", lw=0.8, zorder=0)
        _breakpoints(ax, panel["meta"])
        _log2_x(ax)
        ax.set_yscale("log")
        ax.set_title(panel["title"], fontsize=7.5)
        if exact is None:
            ax.text(0.97, 0.05, "no exact theory", transform=ax.transAxes, ha="right", fontsize=6)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel(rf"iterations to $\varepsilon={eps:g}$")
    axes.flat[0].plot([], [], color="0.3", lw=1.0, label="exact theory")
    axes.flat[0].legend(fontsize=5.5, loc="lower left")
    sns.despine(fig)
    save(fig, path)
