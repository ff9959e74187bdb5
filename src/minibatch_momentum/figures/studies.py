"""One function per seed-system figure; each writes a PDF and the PNG beside it.

- :func:`large_batch_figure` (S1, S4): test accuracy against epochs at the tuned learning
  rate, and the tuning curves (final test accuracy against the learning rate).
- :func:`label_noise_figure` (S2): steps-to-target against ``1 - beta`` per learning
  rate with the crossover fits, and ``1 - beta*`` against ``eta`` with the fitted power
  law, its confidence band and the 2/3 reference.
- :func:`small_lr_figure` (S3): SGD's iterations against its step beside heavy ball's at
  its effective step ``eta / (1 - beta)``, and the ratio per batch size.
- :func:`threshold_figure` (S5): the exact speedup ``T*_SGD / T*_HB`` against ``B`` per
  ``kappa``, and both thresholds against ``kappa``.
- :func:`baselines_figure` (S6): tuned ``T*(B)`` of SGD, HB, NAG, SNGM, ASGD and MaSS.
- :func:`search_noise_figure` (S7): the search-direction noise level against ``B``, its
  ratio to SGD's against ``beta``, test accuracy against it, and the quadratic's
  measured / closed-form ratio.

Figures are drawn at their printed width (``style.HALF``; S7 ``style.FULL``) and are written
atomically.
"""

from __future__ import annotations

import math
import os

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from scipy import stats

from minibatch_momentum.analysis.tuning import gmean
from minibatch_momentum.figures.style import (
    FULL,
    HALF,
    breakpoints,
    despine,
    legend_above,
    palette,
    points,
)
from minibatch_momentum.figures.style import apply as _style
from minibatch_momentum.figures.style import save as _save
from minibatch_momentum.studies.label_noise import PREDICTED_EXPONENT
from minibatch_momentum.studies.large_batch import METHOD_LABELS

__all__ = [
    "large_batch_figure",
    "label_noise_figure",
    "small_lr_figure",
    "threshold_figure",
    "baselines_figure",
    "search_noise_figure",
]

METHOD_COLORS = {"msgd": "#4d4d4d", "sngm": "#1b75bc", "rsgdm": "#d6604d"}
METHOD_MARKERS = {"msgd": "o", "sngm": "s", "rsgdm": "^"}


# --------------------------------------------------------------------------- S1 / S4


def _large_batch_curves(
    fig, ax, df: pd.DataFrame, tuned: dict, methods: list, B_large, B_small
) -> None:
    """Panel (a): each method's tuned runs, accuracy against epoch; the figure's legend."""
    finals = []
    for method in methods:
        color = METHOD_COLORS[method]
        for B, ls in [(B_large, "-"), (B_small, "--")] if B_small != B_large else [(B_large, "-")]:
            t = tuned.get((B, method))
            if t is None:
                continue
            runs = df[
                (df["batch_size"] == B)
                & (df["method"] == method)
                & (df["lr_index"] == t["lr_index"])
            ]
            acc = runs.assign(test_acc=runs["test_acc"].fillna(0.0))
            curve = acc.groupby("epoch")["test_acc"].agg(["mean", "std"]).reset_index()
            ep = curve["epoch"].to_numpy()
            m = curve["mean"].to_numpy()
            sd = np.nan_to_num(curve["std"].to_numpy())
            finals.append(t["test_acc_mean"])
            sd_txt = (
                f"$\\pm${100 * t['test_acc_std']:.1f}" if np.isfinite(t["test_acc_std"]) else ""
            )
            # the line style tells B (title), so the label need not
            label = f"{METHOD_LABELS[method]} {100 * t['test_acc_mean']:.1f}{sd_txt}%"
            ax.plot(ep, m, ls=ls, color=color, lw=1.2 if ls == "-" else 0.9, label=label)
            if ls == "-":
                ax.fill_between(ep, m - sd, m + sd, color=color, alpha=0.15, lw=0)
    lo = max(0.0, (min(finals) if finals else 0.9) - 0.08)
    ax.set_ylim(lo, 1.0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_title(
        f"(a) tuned runs; legend: final accuracy\n(solid: B = {B_large}, dashed: B = {B_small})",
        loc="left",
    )
    # every B = B_large line first: two columns, one per batch size (ncol fills by column)
    handles, labels = ax.get_legend_handles_labels()
    order = [i for i, h in enumerate(handles) if h.get_linestyle() == "-"]
    order += [i for i in range(len(handles)) if i not in order]
    fig.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="outside upper center",
        ncol=2 if B_small != B_large else 1,
        columnspacing=0.5,  # the two columns only just fit the half width
    )


def _large_batch_tuning(bx, analysis: dict, tuned: dict, methods: list, B_large) -> None:
    """Panel (b): final accuracy against the learning rate at the large batch."""
    curves = pd.DataFrame(analysis["lr_curves"])
    for method in methods:
        c = curves[(curves["batch_size"] == B_large) & (curves["method"] == method)].sort_values(
            "lr"
        )
        if c.empty:
            continue
        color = METHOD_COLORS[method]
        bx.errorbar(
            c["lr"],
            c["test_acc_mean"],
            yerr=np.nan_to_num(c["test_acc_std"].to_numpy()),
            color=color,
            marker=METHOD_MARKERS[method],
            ms=3,
            lw=1.0,
            capsize=1.5,
            label=METHOD_LABELS[method],
        )
        t = tuned.get((B_large, method))
        if t is not None:
            bx.plot(t["lr"], t["test_acc_mean"], "o", ms=8, mfc="none", mec=color, mew=1.0)
    bx.set_xscale("log")
    bx.set_ylim(0.0, 1.02)
    bx.set_xlabel(r"learning rate $\eta$ (one grid for all)")
    bx.set_ylabel("final test accuracy")
    bx.set_title(f"(b) tuning at B = {B_large}\n(circled: best validation)", loc="left")
    bx.legend(loc="lower center", ncol=3)


def large_batch_figure(df: pd.DataFrame, analysis: dict, path: str | os.PathLike) -> None:
    """S1/S4: (a) test accuracy vs epoch at each method's tuned learning rate, seed mean
    with a +-1 sd band, at the large batch (solid) and the smallest batch (dashed);
    the legend gives the tuned final accuracy. (b) final test accuracy vs learning rate
    at the large batch (seed mean +-1 sd), the tuned rate circled."""
    _style()
    B_large = analysis["large_batch"]
    B_small = min(analysis["batch_sizes"])
    tuned = {(t["batch_size"], t["method"]): t for t in analysis["tuned"]}
    methods = [m for m in METHOD_LABELS if any(k[1] == m for k in tuned)]
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(HALF, 5.4), gridspec_kw={"height_ratios": [1.25, 1.0]}
    )
    _large_batch_curves(fig, ax, df, tuned, methods, B_large, B_small)
    _large_batch_tuning(bx, analysis, tuned, methods, B_large)
    despine(fig)
    _save(fig, path)


# --------------------------------------------------------------------------- S2


def label_noise_figure(df: pd.DataFrame, analysis: dict, path: str | os.PathLike) -> None:
    """S2: (a) seed-median steps to the flatness target against ``1 - beta``, one colour per
    ``eta``, with the crossover fits and ``1 - beta*`` marked; (b) ``1 - beta*`` against
    ``eta`` (bars: 95% from each crossover fit), the least-squares power law with its
    confidence band, and the 2/3 reference."""
    _style()
    per = analysis["per_eta"]
    grid = np.asarray(analysis["one_minus_beta_grid"])
    colors = palette("viridis", len(per))
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(HALF, 5.6), gridspec_kw={"height_ratios": [1.1, 1.0]}
    )
    fine = np.geomspace(grid.min(), grid.max(), 200)
    for p, color in zip(per, colors, strict=True):
        med = np.asarray(p["median_steps"], dtype=float)
        ok = np.isfinite(med)
        ax.plot(grid[ok], med[ok], "o", ms=2.5, color=color, label=f"$\\eta$ = {p['eta']:.2g}")
        if np.isfinite(p["gamma_c"]):
            T = p["T0"] * (1 + (fine / p["gamma_c"]) ** p["s"])
            keep = T <= np.nanmax(med[ok]) * 1.5 if ok.any() else slice(None)
            ax.plot(fine[keep], T[keep], "-", lw=0.8, color=color, alpha=0.9 if p["ok"] else 0.3)
            ax.plot(p["gamma_c"], 2 * p["T0"], "D", ms=4, mfc="white", mec=color, mew=1.0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$1-\beta$")
    ax.set_ylabel("steps to flatness target")
    ax.set_title(r"(a) time to tr$\,H \leq$ target" "\n" r"(diamonds: $1-\beta^*$)", loc="left")
    legend_above(fig, ax, ncol=3)

    ok = [p for p in per if p["ok"]]
    e = analysis["exponent"]
    if ok:
        eta = np.array([p["eta"] for p in ok])
        gc = np.array([p["gamma_c"] for p in ok])
        se = np.nan_to_num(np.array([p["log_gamma_c_se"] for p in ok]))
        yerr = np.vstack([gc - gc * np.exp(-1.96 * se), gc * np.exp(1.96 * se) - gc])
        bx.errorbar(eta, gc, yerr=yerr, fmt="o", ms=3.5, color="#1b75bc", capsize=1.5, zorder=3)
        x = np.log(eta)
        xs = np.linspace(x.min() - 0.2, x.max() + 0.2, 100)
        if len(ok) >= 3 and np.isfinite(e["exponent"]):
            y = np.log(gc)
            fit = e["intercept"] + e["exponent"] * xs
            resid = y - (e["intercept"] + e["exponent"] * x)
            n = len(x)
            s = math.sqrt(float(np.sum(resid**2)) / (n - 2))
            sxx = float(np.sum((x - x.mean()) ** 2))
            tq = float(stats.t.ppf(0.5 + e.get("level", 0.95) / 2, n - 2))
            band = tq * s * np.sqrt(1.0 / n + (xs - x.mean()) ** 2 / sxx)
            lo_ci, hi_ci = e["ci"]
            bx.plot(
                np.exp(xs),
                np.exp(fit),
                color="#1b75bc",
                lw=1.2,
                label=f"fit: slope {e['exponent']:.3f} [{lo_ci:.3f}, {hi_ci:.3f}]",
            )
            bx.fill_between(
                np.exp(xs),
                np.exp(fit - band),
                np.exp(fit + band),
                color="#1b75bc",
                alpha=0.15,
                lw=0,
            )
        ref = np.log(gc).mean() + PREDICTED_EXPONENT * (xs - x.mean())
        bx.plot(np.exp(xs), np.exp(ref), "--", color="0.4", lw=0.9, label="slope 2/3 (theory)")
    else:
        bx.text(0.5, 0.5, "no crossover located", transform=bx.transAxes, ha="center")
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel(r"learning rate $\eta$")
    bx.set_ylabel(r"$1-\beta^*$")
    bx.set_title(r"(b) optimal momentum against $\eta$", loc="left")
    if bx.get_legend_handles_labels()[0]:
        # below the figure: inside, the fit's label runs into the largest eta's point
        fig.legend(*bx.get_legend_handles_labels(), loc="outside lower center", ncol=1)
    despine(fig)
    _save(fig, path)


# --------------------------------------------------------------------------- S3


def _log2_axis(ax, label="batch size $B$"):
    ax.set_xscale("log", base=2)
    ax.set_xlabel(label)


def _small_lr_steps(
    fig, ax, mom: pd.DataFrame, sgd: pd.DataFrame, per: list, name: str, limit: float
) -> None:
    """Panel (a): iterations against the (effective) step at each small batch size."""
    small = [p["batch_size"] for p in per if p["small"]] or [
        int(mom["batch_size"].min()) if not mom.empty else 1
    ]
    colors = palette("cividis", len(small))
    for B, color in zip(small, colors, strict=True):
        s = sgd[(sgd["batch_size"] == B) & np.isfinite(sgd["T"])].sort_values("eta")
        ax.plot(s["eta_eff"], s["T"], "-o", color=color, ms=3, lw=1.2, label=f"SGD, B = {B}")
        m = mom[(mom["batch_size"] == B) & np.isfinite(mom["T"])]
        for comparable in (True, False):
            sel = m[m["comparable"] == comparable]
            ax.scatter(
                sel["eta_eff"],
                sel["T"],
                s=13,
                marker="s",
                facecolors=[color] * len(sel) if comparable else "none",
                edgecolors=[color] * len(sel),
                linewidths=0.7,
                zorder=3,
            )
    ax.scatter([], [], s=13, marker="s", color="0.4", label=f"{name} at $\\eta/(1-\\beta)$")
    ax.scatter(
        [], [], s=13, marker="s", facecolors="none", edgecolors="0.4", label="(no SGD count there)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    # the steps span less than a decade: label 1, 2, 5 times powers of ten, not only powers
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(r"step: $\eta$ (SGD), $\eta/(1-\beta)$ (" + name + ")")
    ax.set_ylabel(r"iterations to $\varepsilon$")
    ax.set_title(
        f"(a) $B \\leq {limit:.3g}$: {name}($\\eta,\\beta$)\nbeside SGD($\\eta/(1-\\beta)$)",
        loc="left",
    )
    legend_above(fig, ax, ncol=2)


def _small_lr_ratios(
    bx, analysis: dict, mom: pd.DataFrame, per: list, name: str, tol: float, limit: float
) -> None:
    """Panel (b): the ratios of the comparable configurations against B."""
    comp = mom[mom["comparable"]]
    rng = np.random.default_rng(0)
    for B, g in comp.groupby("batch_size"):
        jitter = np.exp(rng.uniform(-0.12, 0.12, len(g)))
        bx.plot(B * jitter, g["ratio"], ".", color="#1b75bc", ms=3, alpha=0.6)
    Bs = [p["batch_size"] for p in per if p["pairs"]]
    med = [np.exp(p["median_log_ratio"]) for p in per if p["pairs"]]
    bx.plot(Bs, med, "-D", color="#1b75bc", ms=3.5, lw=1.0, label="median")
    bx.axhspan(1 / tol, tol, color="0.88", lw=0, zorder=0, label=f"within {tol:g}x")
    bx.axhline(1.0, color="0.5", lw=0.6)
    all_B = [p["batch_size"] for p in per] or [1]
    bx.set_xlim(min(all_B) / 1.5, max(all_B) * 1.5)
    bx.axvspan(min(all_B) / 1.5, limit, color="#1b75bc", alpha=0.07, lw=0)
    bx.axvline(analysis["B_sgd"], color="0.6", ls="--", lw=0.8)
    bx.text(
        analysis["B_sgd"],
        0.97,
        r"$B^*_{\rm SGD}$",
        transform=bx.get_xaxis_transform(),
        ha="center",
        va="top",
        color="0.35",
        bbox={"fc": "white", "ec": "none", "pad": 0.5},
    )
    for p in per:
        bx.text(
            p["batch_size"],
            0.03,
            str(p["pairs"]),
            transform=bx.get_xaxis_transform(),
            ha="center",
            va="bottom",
            color="0.3",
        )
    _log2_axis(bx)
    bx.set_yscale("log")
    r = comp["ratio"].tolist()
    bx.set_ylim(min([1 / tol / 1.5, *r]), max([tol * 1.5, *r]))
    bx.set_ylabel(rf"$T_{{\rm {name}}}(\eta,\beta)\,/\,T_{{\rm SGD}}(\eta/(1-\beta))$")
    bx.set_title("(b) comparable configurations\n(numbers: how many per B)", loc="left")
    bx.legend(loc="upper right")


def small_lr_figure(df: pd.DataFrame, analysis: dict, path: str | os.PathLike) -> None:
    """S3: (a) at each small batch size (one colour per ``B``), SGD's iterations against
    its step (line) and every converged heavy-ball grid point at its effective step
    ``eta / (1 - beta)`` (squares; filled: comparable with SGD, hollow: SGD has no count
    there); (b) ``r = T_HB / T_SGD(eta_eff)`` of every comparable configuration against
    ``B``, the median, the tolerance band, and the number of comparable configurations
    above each batch size (0: none, the equivalence has no support there)."""
    _style()
    method = analysis["config"]["methods"][0]
    name = {"hb": "HB", "nag": "NAG"}.get(method, method)
    tol = float(analysis["config"]["tolerance"])
    limit = float(analysis["small_batch_limit"])
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(HALF, 5.8), gridspec_kw={"height_ratios": [1.1, 1.0]}
    )
    mom = df[df["method"] == method]
    sgd = df[df["method"] == "sgd"]
    per = [p for p in analysis["per_batch"] if p["method"] == method]
    _small_lr_steps(fig, ax, mom, sgd, per, name, limit)
    _small_lr_ratios(bx, analysis, mom, per, name, tol, limit)
    despine(fig)
    _save(fig, path)


# --------------------------------------------------------------------------- S5


def threshold_figure(df: pd.DataFrame, analysis: dict, path: str | os.PathLike) -> None:
    """S5: (a) exact ``T*_SGD / T*_HB`` against ``B / B*_SGD``, one curve per ``kappa``, the
    speedup level dashed and each ``b_speedup`` marked; (b) ``b_speedup`` and ``b_accel``
    against ``kappa`` with their fitted log-log slopes, ``B_sat`` and ``B*_SGD`` for
    reference."""
    _style()
    cfg = analysis["config"]
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(HALF, 5.8), gridspec_kw={"height_ratios": [1.0, 1.0]}
    )
    colors = palette("viridis", len(df))
    for (_, r), color in zip(df.iterrows(), colors, strict=True):
        B = np.asarray(r["curve_B"], float)
        ratio = np.asarray(r["curve_T_sgd"], float) / np.asarray(r["curve_T_hb"], float)
        ax.plot(B / r["B_sgd"], ratio, color=color, lw=1.1, label=f"$\\kappa$ = {r['kappa']:.3g}")
        if np.isfinite(r["b_speedup"]):
            ax.plot(r["b_speedup"] / r["B_sgd"], cfg["speedup"], "o", ms=3.5, color=color)
    ax.axhline(cfg["speedup"], color="0.5", ls="--", lw=0.8)
    ax.axvline(1.0, color="0.6", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$B\,/\,B^*_{\rm SGD}$  ($B^*_{\rm SGD}$ = tr$H/L$)")
    ax.set_ylabel(r"exact $T^*_{\rm SGD}/T^*_{\rm HB}$")
    ax.set_title(
        f"(a) speedup of tuned heavy ball\n(tr$H/L \\approx$ {np.median(df['stable_rank']):.3g})",
        loc="left",
    )
    legend_above(fig, ax, ncol=3)

    k = df["kappa"].to_numpy(float)
    # the thresholds' definitions are the caption's: at the printed size they overflow a legend
    for col, key, marker, color, name in [
        ("b_accel", "accel_slope", "o", "#1b75bc", r"$b_{\rm accel}$"),
        ("b_speedup", "speedup_slope", "s", "#d6604d", r"$b_{\rm speedup}$"),
    ]:
        sl = analysis[key]["slope"]
        bx.plot(
            k, df[col], marker=marker, color=color, ms=4, lw=1.1, label=f"{name}: slope {sl:.2f}"
        )
    bx.plot(k, df["B_sat"], "--", color="0.35", lw=0.9, label=r"$B_{\rm sat}$ = tr$H/(L\mu)^{1/2}$")
    bx.plot(k, df["B_sgd"], ":", color="0.35", lw=0.9, label=r"$B^*_{\rm SGD}$ = tr$H/L$")
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel(r"condition number $\kappa$")
    bx.set_ylabel("batch size")
    bx.set_title("(b) thresholds against $\\kappa$", loc="left")
    fig.legend(*bx.get_legend_handles_labels(), loc="outside lower center", ncol=2)
    despine(fig)
    _save(fig, path)


# --------------------------------------------------------------------------- S6

ALL_METHOD_STYLE = {
    "sgd": {"color": "#4d4d4d", "marker": "o", "ls": "-", "label": "SGD"},
    "hb": {"color": "#1b75bc", "marker": "s", "ls": "-", "label": "heavy ball"},
    "nag": {"color": "#d6604d", "marker": "^", "ls": "-", "label": "Nesterov"},
    "sngm": {"color": "#33a02c", "marker": "v", "ls": "--", "label": "SNGM"},
    "asgd": {"color": "#6a3d9a", "marker": "D", "ls": "--", "label": "ASGD"},
    "mass": {"color": "#ff7f00", "marker": "P", "ls": "--", "label": "MaSS"},
}


def _baselines_tuned(ax, table: pd.DataFrame) -> None:
    """Panel (a): each method's tuned iterations against B, bars over seeds."""
    for method, st in ALL_METHOD_STYLE.items():
        t = table[table["method"] == method].sort_values("batch_size")
        t = t[np.isfinite(t["T_gmean"])]
        if t.empty:
            continue
        T = t["T_gmean"].to_numpy(float)
        yerr = np.clip(np.vstack([T - t["T_min"], t["T_max"] - T]), 0, None)
        yerr[~np.isfinite(yerr)] = 0
        ax.errorbar(
            t["batch_size"],
            T,
            yerr=yerr,
            color=st["color"],
            marker=st["marker"],
            ls=st["ls"],
            ms=3.5,
            lw=1.1,
            capsize=1.5,
            label=st["label"],
        )


def baselines_figure(table: pd.DataFrame, analysis: dict, path: str | os.PathLike) -> None:
    """S6: (a) tuned iterations-to-eps ``T*(B)`` of all six methods, log-log (bars: range
    over seeds; dashed lines: the baselines, on their own smaller set of batch sizes);
    (b) the best of heavy ball and Nesterov over each baseline at the batch sizes they
    share (above 1: the baseline is faster)."""
    _style()
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(HALF, 5.3), gridspec_kw={"height_ratios": [1.3, 1.0]}
    )
    _baselines_tuned(ax, table)
    for a in (ax, bx):
        breakpoints(a, analysis)
    _log2_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel(r"tuned iterations to $\varepsilon$")
    ax.set_title("(a) each method tuned on its own grid", loc="left")
    # one legend for both panels: (b)'s lines keep their method's colour and marker
    legend_above(fig, ax, ncol=3)

    per = analysis["per_batch"]
    for method in ("sngm", "asgd", "mass"):
        st = ALL_METHOD_STYLE[method]
        pts = [
            (
                p["batch_size"],
                min(p["T"].get("hb", np.inf), p["T"].get("nag", np.inf)) / p["T"][method],
            )
            for p in per
            if method in p["T"] and np.isfinite(p["T"][method])
        ]
        if pts:
            B, r = zip(*pts, strict=True)
            bx.plot(
                B,
                r,
                color=st["color"],
                marker=st["marker"],
                ls=st["ls"],
                ms=3.5,
                lw=1.1,
                label=st["label"],
            )
    bx.axhline(1.0, color="0.5", lw=0.6)
    bx.axhline(analysis["parity_factor"], color="0.6", lw=0.6, ls=":")
    _log2_axis(bx)
    bx.set_xlim(ax.get_xlim())
    bx.set_yscale("log")
    bx.set_ylabel(r"min$(T_{\rm HB}, T_{\rm NAG})\,/\,T_{\rm baseline}$")
    bx.set_title("(b) above 1: the baseline is faster", loc="left")
    despine(fig)
    _save(fig, path)


# --------------------------------------------------------------------------- S7

NOISE_STYLE = {
    "sgd": {"color": "#4d4d4d", "marker": "o"},
    "shb": {"color": "#d6604d", "marker": "s"},
    "nshb": {"color": "#1b75bc", "marker": "^"},
}


def _noise_against_batch(ax, analysis: dict, runs: pd.DataFrame, beta_hi: float) -> None:
    """Panel (a): the level against B per optimizer, the predicted slope through SGD's."""
    for method, st in NOISE_STYLE.items():
        g = runs[(runs["method"] == method) & (runs["beta"].isin([0.0, beta_hi]))]
        if g.empty:
            continue
        lv = g.groupby("batch_size")["level"].apply(gmean)
        slope = next(
            (
                s["slope"]
                for s in analysis["slopes"]
                if s["method"] == method and (method == "sgd" or s["beta"] == beta_hi)
            ),
            math.nan,
        )
        # the update rules are (c)'s legend; here they would run past the axes
        label = method.upper() + ("" if method == "sgd" else f", $\\beta={beta_hi:g}$")
        ax.plot(
            lv.index,
            lv.to_numpy(),
            color=st["color"],
            marker=st["marker"],
            ms=3.5,
            lw=1.1,
            label=f"{label}: slope {slope:.2f}",
        )
        if method == "sgd":
            B = lv.index.to_numpy(float)
            ref = lv.iloc[0] * (B / B[0]) ** analysis["predicted_slope"]
            ax.plot(
                B,
                ref,
                color="0.5",
                ls=":",
                lw=1.0,
                label=f"predicted: slope {analysis['predicted_slope']:.2f}",
            )
    _log2_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel(r"noise level $\|d_t-\nabla f(x_t)\|$")
    ax.set_title("(a) digits MLP: level against batch size", loc="left")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo / 10, hi)  # a decade below the data for the legend
    ax.legend(loc="lower left")


def _noise_against_momentum(bx, analysis: dict, frozen_noise_ratio) -> None:
    """Panel (b): the level relative to SGD's against beta, beside the frozen-noise
    prediction (``frozen_noise_ratio``, from the study's theory)."""
    grid = np.linspace(0.0, 0.97, 100)
    for m in analysis["momentum"]:
        st = NOISE_STYLE[m["method"]]
        betas = np.array([b["beta"] for b in m["by_beta"]])
        r = np.array([b["ratio"] for b in m["by_beta"]])
        ci = np.array([b["ci"] for b in m["by_beta"]], dtype=float).reshape(-1, 2)
        yerr = np.clip(np.vstack([r - ci[:, 0], ci[:, 1] - r]), 0, None)
        yerr[~np.isfinite(yerr)] = 0
        points(
            bx,
            betas,
            r,
            yerr,
            color=st["color"],
            marker=st["marker"],
            label=f"{m['method'].upper()} measured",
        )
        bx.plot(
            grid,
            frozen_noise_ratio(m["method"], grid),
            color=st["color"],
            ls="--",
            lw=0.9,
            label=f"{m['method'].upper()} predicted",
        )
    bx.axhline(1.0, color="0.5", lw=0.8)
    bx.set_yscale("log")
    lo, hi = bx.get_ylim()
    bx.set_ylim(lo, hi * 6)  # room above the data for the legend
    bx.set_xlabel(r"momentum $\beta$")
    bx.set_ylabel("level / SGD's at equal $\\eta/(1-\\beta)$")
    bx.set_title("(b) does momentum lower the level?", loc="left")
    # ncol fills by column: measured (markers) on the left, predictions (dashes) on the right
    handles, labels = bx.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].endswith("predicted"))
    bx.legend([handles[i] for i in order], [labels[i] for i in order], ncol=2, loc="upper left")


def _accuracy_against_noise(cx, analysis: dict, labels: dict) -> None:
    """Panel (c): test accuracy against the level across configurations, Spearman's rho."""
    conf = pd.DataFrame(analysis["configurations"])
    for method, st in NOISE_STYLE.items():
        g = conf[conf["method"] == method]
        if not g.empty:
            cx.scatter(
                g["level"],
                100 * g["test_acc"],
                s=10,
                color=st["color"],
                marker=st["marker"],
                label=labels[method],
            )
    c = analysis["correlation"]
    cx.set_xscale("log")
    cx.set_xlabel("noise level (late in training)")
    cx.set_ylabel("test accuracy (%)")
    cx.set_title(
        f"(c) Spearman $\\rho$ = {c['rho']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}]",
        loc="left",
    )
    cx.legend(loc="center left")


def _quadratic_closed_form(dx, analysis: dict, beta_hi: float) -> None:
    """Panel (d): the quadratic's measured / closed-form noise per optimizer and B."""
    cells = pd.DataFrame(analysis["quadratic"]["cells"])
    variants = cells[["method", "beta"]].drop_duplicates().sort_values(["method", "beta"])
    k = len(variants)
    for i, (method, beta) in enumerate(variants.itertuples(index=False)):
        g = cells[(cells["method"] == method) & (cells["beta"] == beta)].sort_values("batch_size")
        x = g["batch_size"].to_numpy(float) * 2 ** (0.12 * (i - (k - 1) / 2))
        st = NOISE_STYLE[method]
        label = "SGD" if method == "sgd" else f"{method.upper()} $\\beta={beta:g}$"
        points(
            dx,
            x,
            g["ratio"],
            2.576 * g["se"],
            color=st["color"],
            marker=st["marker"],
            ms=3,
            label=label,
            alpha=0.6 + 0.4 * (beta == beta_hi or method == "sgd"),
        )
    dx.axhline(1.0, color="0.5", lw=0.8)
    _log2_axis(dx)
    dx.set_ylabel("measured / closed form")
    dx.set_title(r"(d) quadratic: $E\|d_t-\nabla f(x_t)\|^2$", loc="left")
    lo, hi = dx.get_ylim()
    dx.set_ylim(lo, hi + 0.6 * (hi - lo))  # room above the intervals for the legend
    # ncol fills by column: NSHB and SGD in the first, SHB in the second
    dx.legend(ncol=2, loc="upper center")


def search_noise_figure(df: pd.DataFrame, analysis: dict, path: str | os.PathLike) -> None:
    """S7: (a) digits MLP, the noise level (RMS ``||d_t - grad f(x_t)||`` late in
    training; geometric mean over effective steps and seeds) against ``B`` per optimizer
    at the largest ``beta``, with the predicted slope through SGD's points; (b) level
    relative to SGD at equal effective step against ``beta`` (bootstrap intervals), beside
    the frozen-noise predictions; (c) test accuracy against the level across
    configurations, with Spearman's rho; (d) the quadratic's measured / closed-form
    ``E||omega||^2`` per optimizer and ``B`` (99% intervals)."""
    from minibatch_momentum.studies.search_noise.config import METHOD_LABELS as LABELS
    from minibatch_momentum.studies.search_noise.theory import frozen_noise_ratio

    _style()
    fig, axes = plt.subplots(2, 2, figsize=(FULL, 5.2))
    (ax, bx), (cx, dx) = axes
    runs = pd.DataFrame(analysis["runs"])
    runs = runs[np.isfinite(runs["level"].astype(float))]
    beta_hi = max(analysis["config"]["betas"])

    _noise_against_batch(ax, analysis, runs, beta_hi)
    _noise_against_momentum(bx, analysis, frozen_noise_ratio)
    _accuracy_against_noise(cx, analysis, LABELS)
    _quadratic_closed_form(dx, analysis, beta_hi)
    _save(fig, path)
