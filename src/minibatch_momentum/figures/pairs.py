"""One function per figure. Each takes the summary tables and writes PDF and PNG.

Figures are drawn at the width they print at (``style.HALF`` or ``style.FULL``), their
legends above the axes, and use one colour per method throughout, so a reader can match
curves across figures.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from minibatch_momentum.figures.style import (
    FULL,
    HALF,
    breakpoints,
    despine,
    legend_above,
    points,
    save,
)
from minibatch_momentum.figures.style import apply as _style

METHOD_STYLE = {
    "sgd": {"color": "#4d4d4d", "marker": "o", "label": "SGD"},
    "hb": {"color": "#1b75bc", "marker": "s", "label": "heavy ball"},
    "nag": {"color": "#d6604d", "marker": "^", "label": "Nesterov"},
}


def _log2_x(ax):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size $B$")


def _regimes(ax, meta, B_max):
    """Shade the three regimes: perfect scaling for both (green, B < B*_SGD), for momentum
    only (blue, B*_SGD..B_sat), saturation (grey, B > B_sat). The captions name them: at
    print size the first span is too narrow for its name."""
    spans = [
        (0.5, meta["B_sgd"], "#e5f5e0"),
        (meta["B_sgd"], meta["B_sat"], "#deebf7"),
        (meta["B_sat"], 2 * B_max, "#f0f0f0"),
    ]
    for lo, hi, color in spans:
        ax.axvspan(lo, hi, color=color, lw=0, zorder=0)


def _batch_axes(measured, meta, height: float):
    """A half-width figure over the measured batch sizes with the regimes shaded:
    ``(fig, ax, largest B)``."""
    _style()
    fig, ax = plt.subplots(figsize=(HALF, height))
    B_max = max(float(B[-1]) for B in measured.batch_sizes.values())
    _regimes(ax, meta, B_max)
    return fig, ax, B_max


def _finish_batch_axes(fig, ax, meta, B_max: float, ylabel: str, path) -> None:
    """Breakpoints, log-log axes over ``B``, the legend above; written to ``path``."""
    breakpoints(ax, meta)
    _log2_x(ax)
    ax.set_xlim(0.7, 1.4 * B_max)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    legend_above(fig, ax)
    despine(fig)
    save(fig, path)


def _point_and_bars(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point estimates (replicate 0) and 90% bootstrap bars as ``errorbar``'s ``yerr``."""
    from minibatch_momentum.analysis.scaling import interval

    point = values[0]
    ci = np.array([interval(values[:, j]) for j in range(values.shape[1])]).T
    with np.errstate(invalid="ignore"):
        err = np.clip(np.vstack([point - ci[0], ci[1] - point]), 0, None)
    return point, np.nan_to_num(err, nan=0.0, posinf=0.0)


def _measured(ax, B, values, st, label=True):
    point, err = _point_and_bars(values)
    points(
        ax,
        B,
        point,
        err,
        color=st["color"],
        marker=st["marker"],
        label=st["label"] if label else None,
        zorder=3,
    )


def tstar_vs_batch(measured, exact, meta: dict, eps: float, path) -> None:
    """Grid-tuned iterations-to-eps against B (markers, 90% bootstrap bars over seeds)
    and the exact theory tuned on the same grid (lines), with the three regimes shaded."""
    fig, ax, B_max = _batch_axes(measured, meta, height=2.9)
    for method, st in METHOD_STYLE.items():
        if method not in measured.T:
            continue
        _measured(ax, measured.batch_sizes[method], measured.T[method], st)
        ax.axhline(measured.T_det[method], color=st["color"], lw=0.6, ls=":", zorder=1)
        if exact is not None and method in exact.T:
            ax.plot(exact.batch_sizes[method], exact.T[method][0], color=st["color"], lw=1.0)
    _finish_batch_axes(fig, ax, meta, B_max, rf"iterations to $\varepsilon={eps:g}$", path)


def efficiency_vs_batch(measured, exact, meta: dict, path) -> None:
    """Parallel efficiency ``eff(B) = B_ref T(B_ref) / (B T(B))`` of every method (markers,
    90% bootstrap bars; lines: the exact theory on the same grid) with the 1/2 line."""
    from minibatch_momentum.analysis.scaling import efficiency

    fig, ax, B_max = _batch_axes(measured, meta, height=2.7)
    for method, st in METHOD_STYLE.items():
        if method not in measured.T:
            continue
        B = measured.batch_sizes[method]
        _measured(ax, B, efficiency(B, measured.T[method]), st)
        if exact is not None and method in exact.T:
            Be = exact.batch_sizes[method]
            ax.plot(Be, efficiency(Be, exact.T[method])[0], color=st["color"], lw=1.0)
    ax.axhline(0.5, color="0.3", lw=0.7, ls="--")
    _finish_batch_axes(fig, ax, meta, B_max, r"parallel efficiency $\mathrm{eff}(B)$", path)


def speedup_vs_batch(measured, exact, meta: dict, path) -> None:
    """Momentum's speedup ``R(B) = T_SGD/T`` (top) and the speedup per unit of batch
    ``A(B) = R(B) B_crit,SGD / B`` (bottom); markers with 90% bootstrap bars, lines the
    exact theory on the same grid."""
    _style()
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(HALF, 3.9), sharex=True)
    for method in ("hb", "nag"):
        if method not in measured.T or "sgd" not in measured.T:
            continue
        st = METHOD_STYLE[method]
        q = measured.quantities(method)
        _measured(ax, q["B_common"], q["R"], st)
        _measured(bx, q["B_common"], q["A"], st, label=False)
        if exact is not None and method in exact.T:
            e = exact.quantities(method)
            ax.plot(e["B_common"], e["R"][0], color=st["color"], lw=1.0)
            bx.plot(e["B_common"], e["A"][0], color=st["color"], lw=1.0)
    ax.axhline(1.0, color="0.6", lw=0.6)
    bx.axhline(1.0, color="0.3", lw=0.7, ls="--")
    bx.axvspan(4 * meta["B_sgd"], meta["B_sat"] / 4, color="#deebf7", lw=0, zorder=0)
    for a in (ax, bx):
        breakpoints(a, meta)
        a.set_yscale("log")
    _log2_x(bx)
    ax.set_ylabel(r"speedup $R(B)=T_{\rm SGD}/T$")
    bx.set_ylabel(r"$A(B)=R(B)\,B_{\rm crit,SGD}/B$")
    legend_above(fig, ax, ncol=2)
    despine(fig)
    save(fig, path)


def kappa_scan(exact_kappa, exact_ratio, measured: dict | None, path) -> None:
    """Claim C7: ``B_crit,HB / B_crit,SGD`` against kappa, the exact theory (line) and
    the sweeps (markers, 90% bootstrap bars), beside ``sqrt(kappa)``."""
    _style()
    fig, ax = plt.subplots(figsize=(HALF, 2.4))
    k = np.asarray(exact_kappa, float)
    ax.plot(
        k, exact_ratio, color=METHOD_STYLE["hb"]["color"], lw=1.0, marker=".", label="exact theory"
    )
    ax.plot(
        k,
        np.sqrt(k) * exact_ratio[0] / np.sqrt(k[0]),
        color="0.3",
        lw=0.7,
        ls=":",
        label=r"$\propto\kappa^{1/2}$",
    )
    if measured is not None:
        point, err = _point_and_bars(np.asarray(measured["ratio"], float))
        points(ax, measured["kappa"], point, err, color="k", marker="s", label="sweeps", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"condition number $\kappa$")
    ax.set_ylabel(r"$B_{\rm crit,HB}/B_{\rm crit,SGD}$")
    ax.legend(loc="upper left")
    despine(fig)
    save(fig, path)


def loss_curves(curves: pd.DataFrame, meta: dict, batch_sizes, eps: float, path) -> None:
    """Relative loss against iterations at the tuned point, one panel per batch size.

    The line is the seeds' median at each recorded step (while all seeds still run),
    the band their range.
    """
    _style()
    batch_sizes = [b for b in batch_sizes if b in set(curves["batch_size"])]
    fig, axes = plt.subplots(1, len(batch_sizes), figsize=(FULL, 2.3), sharey=True, squeeze=False)
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
        ax.set_title(f"$B = {B}$")
        ax.set_xlabel("iteration $t$")
    axes[0][0].set_ylabel(r"$f(x_t)/f(x_0)$")
    legend_above(fig, axes[0][0])
    despine(fig)
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
    fig, ax = plt.subplots(figsize=(HALF, 3.0))
    for method, st in METHOD_STYLE.items():
        e = _exact(exact, method)
        if not e.empty:
            ax.plot(e["batch_size"], e["T_curve"], color=st["color"], lw=1.1, label=st["label"])
        _tuned_markers(ax, tuned, method, ms=3.5, capsize=1.5, mew=0.9)
        k = (knees or {}).get(method)
        if k is not None and np.isfinite(float(k)):
            ax.axvline(float(k), color=st["color"], ls=":", lw=0.9, zorder=0)
    ax.plot([], [], color="0.3", lw=1.1, label="exact")
    ax.plot([], [], color="0.3", marker="o", mfc="white", ls="none", ms=3.5, label="sweep")
    ax.plot([], [], color="0.3", ls=":", lw=0.9, label="knee")
    breakpoints(ax, meta)
    _log2_x(ax)
    ax.set_yscale("log")
    ax.set_ylabel(rf"iterations to $\varepsilon={eps:g}$")
    legend_above(fig, ax)
    despine(fig)
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
        2, 1, figsize=(HALF, 4.1), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
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
            bx.plot(e.index, e["rule_T_curve"] / e["T_curve"], color=st["color"], ls="--", lw=0.9)
    ax.plot([], [], color="0.3", ls="--", lw=0.9, label="rule, exact theory")
    bx.axhline(factor, color="0.35", lw=0.8, ls="-.")
    bx.text(
        1.0,
        factor,
        f" {factor:g}x",
        transform=bx.get_yaxis_transform(),
        va="center",
        ha="left",
        color="0.35",
    )
    bx.axhline(1.0, color="0.6", lw=0.6)
    breakpoints(ax, meta)
    ax.set_yscale("log")
    ax.set_ylabel(rf"iterations to $\varepsilon={eps:g}$")
    legend_above(fig, ax, ncol=2)
    _log2_x(bx)
    bx.set_ylabel(r"$T_{\rm rule}/T_{\rm grid\,best}$")
    lo, hi = bx.get_ylim()
    bx.set_ylim(min(lo, 0.8), max(hi, factor * 1.15))
    despine(fig)
    save(fig, path)


def _optima(ax, exact: pd.DataFrame, tuned: pd.DataFrame, L: float) -> None:
    """On a rate map: the momentum rule's point (x, black on white so it shows on any
    colour) and the exact optimum (+) from ``exact``, the sweep's grid-best (o) from
    ``tuned`` (each a method's rows at one batch size)."""
    marks = []
    if not exact.empty:
        rule = (exact["rule_eta"] * L, 1 - exact["rule_beta"])
        marks += [
            (rule, "x", dict(color="white", ms=6, mew=1.6)),
            (rule, "x", dict(color="black", ms=5, mew=0.9, label="rule")),
            (
                (exact["eta"] * L, 1 - exact["beta"]),
                "+",
                dict(color="#d6604d", ms=7, mew=1.2, label="exact optimum"),
            ),
        ]
    if not tuned.empty:
        marks.append(
            (
                (tuned["eta"] * L, 1 - tuned["beta"]),
                "o",
                dict(mfc="none", mec="white", ms=6, mew=1.2, label="grid-best"),
            )
        )
    for (x, y), fmt, kw in marks:
        ax.plot(x, y, fmt, **kw)


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
        figsize=(FULL, 2.5),
        sharey=True,
        squeeze=False,
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
        t = tuned[(tuned["method"] == method) & (tuned["batch_size"] == B)]
        _optima(ax, e, t, L)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"$B = {B}$")
        ax.set_xlabel(r"$\eta L$")
    axes[0][0].set_ylabel(r"$1-\beta$")
    legend_above(fig, axes[0][0], frameon=True, facecolor="0.82")  # grey: the white marker shows
    if mesh is not None:
        cb = fig.colorbar(mesh, ax=axes[0].tolist(), shrink=0.9, pad=0.01)
        cb.set_label(r"$\log_{10}(1-\rho)$")
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
        2, 1, figsize=(HALF, 4.3), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
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
    legend_above(fig, ax, ncol=1)
    bx.axhline(0.0, color="black", ls="--", lw=0.8)
    bx.text(
        0.99,
        0.97,
        f"shaded: {100 * conf:g}% band of the mean",
        transform=bx.transAxes,
        ha="right",
        va="top",
        color="0.35",
    )
    bx.set_xlabel("iteration $t$")
    bx.set_ylabel("MC / exact $-$ 1")
    despine(fig)
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(FULL, 0.3 + 2.2 * nrows), squeeze=False)
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
        breakpoints(ax, panel["meta"])
        _log2_x(ax)
        ax.set_yscale("log")
        ax.set_title(panel["title"].replace(" / ", "\n"))
        if exact is None:
            ax.text(0.97, 0.05, "no exact theory", transform=ax.transAxes, ha="right")
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel(rf"iterations to $\varepsilon={eps:g}$")
    axes.flat[0].plot([], [], color="0.3", lw=1.0, label="exact theory")
    legend_above(fig, axes.flat[0], ncol=4)
    despine(fig)
    save(fig, path)
