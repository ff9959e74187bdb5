"""The claims report: each claim of DESIGN.md section 2, measured and judged.

Every claim is a list of checks; a check holds the measured value, the predicted
value, the tolerance and whether it passed. A claim passes when all its checks do,
is ``INCONCLUSIVE`` when the data cannot decide (e.g. fewer than two batch sizes in
a window), and otherwise FAILS, with the numbers beside the verdict. Tolerances
come from the config and are printed in the report; nothing here is tuned to pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .analysis import fit_knee, loglog_slope, speedup

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"

STATEMENTS = {
    "C1": "Linear speedup: with tuned momentum, iterations-to-eps fall in proportion to 1/B "
    "beyond the batch size where plain SGD stops improving.",
    "C2": "Acceleration grows in proportion to B: T_SGD/T_momentum rises with slope +1 "
    "between B*_SGD and B_sat, and is about 1 below B*_SGD.",
    "C3": "Saturation at a natural point: T_momentum(B) flattens near B_sat, at the "
    "deterministic accelerated iteration count.",
    "C4": "Simple momentum choice works: the momentum rule's (eta, beta), computed from the "
    "problem's spectrum alone, reaches eps within a factor of the grid-searched best at every B.",
    "C5": "It holds for heavy ball and Nesterov under every sampler: uniform mini-batches, "
    "randomized Kaczmarz (row-norm sampling, normalized rows) and coordinate descent "
    "(C1-C4 per method and sampler, over every problem swept with that sampler).",
    "C6": "It needs only minimal assumptions on the noise: non-Gaussian rows, uneven row "
    "norms, real data (C1-C4 per method and problem family, over every sampler swept on it).",
    "T1": "The exact mean-square theory is exact: the exact E f(x_t) curve (finite-sample "
    "operator of this A) lies inside the Monte Carlo confidence band of the engine's mean.",
}


@dataclass(frozen=True)
class Tolerances:
    """The pass bands (defaults are DESIGN.md's)."""

    slope: float = 0.15
    small_batch_ratio: tuple[float, float] = (0.7, 1.5)
    knee_factor: float = 2.0
    plateau_factor: float = 1.5
    rule_factor: float = 1.5
    t1_min_inside: float = 0.8

    @classmethod
    def from_dict(cls, d: dict | None) -> Tolerances:
        d = dict(d or {})
        if "small_batch_ratio" in d:
            d["small_batch_ratio"] = tuple(d["small_batch_ratio"])
        return cls(**d)


def _check(name, measured, predicted, tolerance: str, ok: bool | None, **details) -> dict:
    return {
        "check": name,
        "measured": measured,
        "predicted": predicted,
        "tolerance": tolerance,
        "pass": ok,
        **details,
    }


def _verdict(checks: list[dict]) -> str:
    if any(c["pass"] is None for c in checks):
        return INCONCLUSIVE
    return PASS if all(c["pass"] for c in checks) else FAIL


def _within(x: float, target: float, tol: float) -> bool | None:
    return None if not np.isfinite(x) else bool(abs(x - target) <= tol)


def _curve(tuned: pd.DataFrame, method: str) -> tuple[np.ndarray, np.ndarray]:
    t = tuned[tuned["method"] == method].sort_values("batch_size")
    return t["batch_size"].to_numpy(float), t["T_gmean"].to_numpy(float)


def _exact_curve(exact: pd.DataFrame | None, method: str, col: str = "T_rate"):
    """``(B, T)`` of the exact-theory table for ``method`` (empty arrays without one)."""
    if exact is None or method not in set(exact["method"]):
        return np.array([]), np.array([])
    t = exact[exact["method"] == method].sort_values("batch_size")
    return t["batch_size"].to_numpy(float), t[col].to_numpy(float)


def _closed_form_sgd(B, meta) -> np.ndarray:
    # T_SGD(B) ~ (kappa_bar / B + kappa) log(1/eps): only the shape matters for a slope.
    return meta["kappa_bar"] / np.asarray(B, float) + meta["kappa"]


def claim_c1(tuned, meta, method, tol: Tolerances, exact=None) -> dict:
    lo, hi = meta["B_sgd"], meta["B_sat"] / 3
    B, T = _curve(tuned, method)
    mom = loglog_slope(B, T, lo, hi)
    Bs, Ts = _curve(tuned, "sgd")
    sgd = loglog_slope(Bs, Ts, lo, hi)
    cf = loglog_slope(Bs, _closed_form_sgd(Bs, meta), lo, hi)
    ex_mom = loglog_slope(*_exact_curve(exact, method), lo, hi)["slope"]
    ex_sgd = loglog_slope(*_exact_curve(exact, "sgd"), lo, hi)["slope"]
    return {
        "checks": [
            _check(
                f"slope of log T_{method} vs log B on [B*_SGD, B_sat/3] = [{lo:.3g}, {hi:.3g}]",
                mom["slope"],
                -1.0,
                f"+/- {tol.slope}",
                _within(mom["slope"], -1.0, tol.slope),
                stderr=mom["stderr"],
                batch_sizes=mom["batch_sizes"],
                exact_theory_slope=ex_mom,
            ),
            _check(
                "slope of log T_sgd vs log B on the same window",
                sgd["slope"],
                0.0,
                f"+/- {tol.slope}",
                _within(sgd["slope"], 0.0, tol.slope),
                stderr=sgd["stderr"],
                batch_sizes=sgd["batch_sizes"],
                closed_form_slope=cf["slope"],
                closed_form="(kappa_bar/B + kappa), the SGD count's shape, over the same B",
                exact_theory_slope=ex_sgd,
            ),
        ],
        "figure": "tstar_vs_batch",
    }


def _exact_ratio(exact, method):
    """``(B, T_sgd / T_method)`` of the exact-theory table at the batch sizes of both."""
    Bs, Ts = _exact_curve(exact, "sgd")
    Bm, Tm = _exact_curve(exact, method)
    common, i, j = np.intersect1d(Bs, Bm, return_indices=True)
    return common, Ts[i] / Tm[j]


def claim_c2(tuned_runs, meta, method, tol: Tolerances, exact=None) -> dict:
    sp = speedup(tuned_runs, "sgd", method)
    lo, hi = meta["B_sgd"], meta["B_sat"] / 3
    B, r = sp["batch_size"].to_numpy(float), sp["ratio"].to_numpy(float)
    s = loglog_slope(B, r, lo, hi)
    small = sp[sp["batch_size"] <= meta["B_sgd"] / 2]
    lo_r, hi_r = tol.small_batch_ratio
    if small.empty:
        small_ok, rmin, rmax = None, float("nan"), float("nan")
    else:
        rmin, rmax = float(small["ratio"].min()), float(small["ratio"].max())
        small_ok = bool(lo_r <= rmin and rmax <= hi_r)
    eB, er = _exact_ratio(exact, method)
    ex_slope = loglog_slope(eB, er, lo, hi)["slope"]
    ex_small = er[eB <= meta["B_sgd"] / 2]
    ex_small = [float(ex_small.min()), float(ex_small.max())] if ex_small.size else []
    return {
        "checks": [
            _check(
                f"slope of log(T_sgd/T_{method}) vs log B on [{lo:.3g}, {hi:.3g}]",
                s["slope"],
                1.0,
                f"+/- {tol.slope}",
                _within(s["slope"], 1.0, tol.slope),
                stderr=s["stderr"],
                batch_sizes=s["batch_sizes"],
                exact_theory_slope=ex_slope,
            ),
            _check(
                f"T_sgd/T_{method} for B <= B*_SGD/2 = {meta['B_sgd'] / 2:.3g} (min, max)",
                [rmin, rmax],
                1.0,
                f"within [{lo_r}, {hi_r}]",
                small_ok,
                batch_sizes=small["batch_size"].tolist(),
                exact_theory_min_max=ex_small,
            ),
        ],
        "figure": "speedup_vs_batch",
    }


def claim_c3(
    tuned, meta, method, deterministic_T: float, tol: Tolerances, exact=None, knees=None
) -> dict:
    B, T = _curve(tuned, method)
    knee = fit_knee(B, T)
    eB, eT = _exact_curve(exact, method)
    ex_fit = fit_knee(eB, eT) if eB.size else {"knee": np.nan, "plateau": np.nan}
    ex_knee = (knees or {}).get(method, np.nan)
    k, f = knee["knee"], tol.knee_factor
    knee_ok = None if not np.isfinite(k) else bool(meta["B_sat"] / f <= k <= meta["B_sat"] * f)
    p, g = knee["plateau"], tol.plateau_factor
    plateau_ok = (
        None
        if not (np.isfinite(p) and np.isfinite(deterministic_T))
        else bool(deterministic_T / g <= p <= deterministic_T * g)
    )
    return {
        "checks": [
            _check(
                f"fitted knee of T_{method}(B) vs predicted B_sat",
                k,
                meta["B_sat"],
                f"within a factor {f}",
                knee_ok,
                fitted_slope=knee["slope"],
                exact_theory_knee=ex_knee,
                exact_theory_knee_definition="T*(B) = 2 x the noise-free optimum's count",
                knee_fitted_to_exact_curve=ex_fit["knee"],
            ),
            _check(
                f"fitted plateau of T_{method}(B) vs exact full-batch {method} count "
                "(tuned on the same grid)",
                p,
                deterministic_T,
                f"within a factor {g}",
                plateau_ok,
                plateau_fitted_to_exact_curve=ex_fit["plateau"],
                exact_theory_T_at_largest_B=float(eT[-1]) if eT.size else np.nan,
            ),
        ],
        "figure": "tstar_vs_batch",
    }


def claim_c4(tuned, rule, meta, method, tol: Tolerances, exact=None, variant=None) -> dict:
    """The rule's empirical ``T`` over the grid-best ``T`` (geometric means over seeds) at
    every batch size both have; a batch size where the grid-best never converged cannot
    be judged and is listed instead."""
    g = tuned[tuned["method"] == method].set_index("batch_size")["T_gmean"]
    r = (
        rule[rule["method"] == method].set_index("batch_size")["T_gmean"]
        if rule is not None and not rule.empty
        else pd.Series(dtype=float)
    )
    Bs = sorted(set(g.index) & set(r.index))
    ratio = np.array([r[b] / g[b] if np.isfinite(g[b]) else np.nan for b in Bs], float)
    judged = np.isfinite(np.array([g[b] for b in Bs], float))
    f = tol.rule_factor
    worst = float(np.max(ratio[judged])) if judged.any() else float("nan")
    ok = None if not judged.any() else bool(worst <= f)
    eB, eT = _exact_curve(exact, method)
    _, eR = _exact_curve(exact, method, "rule_T_rate")
    ex_ratio = {int(b): float(x / y) for b, x, y in zip(eB, eR, eT, strict=True) if b in Bs}
    ex_worst = max(ex_ratio.values()) if ex_ratio else float("nan")
    return {
        "checks": [
            _check(
                f"max over B of T_rule/T_grid-best for {method} (geometric means over seeds)",
                worst,
                ex_worst,
                f"<= {f} at every B",
                ok,
                batch_sizes=[int(b) for b in Bs],
                ratios=ratio.tolist(),
                failing_batch_sizes=[int(b) for b, x in zip(Bs, ratio, strict=True) if x > f],
                unjudged_batch_sizes=[int(b) for b, j in zip(Bs, judged, strict=True) if not j],
                exact_theory_ratios=[ex_ratio.get(int(b), float("nan")) for b in Bs],
                predicted_is="exact-theory max of T_rule/T* (asymptotic counts, Gaussian rows)",
                rule_variant=variant or {},
            ),
        ],
        "figure": "rule_vs_grid",
    }


def claim_t1(mc: pd.DataFrame, method: str, tol: Tolerances) -> dict:
    """Share of the steps ``t >= 1`` at which the exact curve lies inside the Monte Carlo
    band (see :data:`T1_CRITERION`)."""
    d = mc[(mc["method"] == method) & (mc["step"] >= 1)].sort_values("step")
    if d.empty:
        return {"checks": [_check("T1 data", np.nan, np.nan, "", None)], "figure": FIG_T1}

    def inside(col):
        return float(np.mean((d[col] >= d["lower"]) & (d[col] <= d["upper"])))

    conf = float(d["confidence"].iloc[0])
    z = ((d["mc_mean"] - d["exact"]) / d["mc_stderr"]).to_numpy()
    frac = inside("exact")
    k = int(np.argmax(np.abs(z)))
    return {
        "checks": [
            _check(
                f"share of steps 1..{int(d['step'].max())} where the exact E f(x_t)/f(x_0) "
                f"lies inside the {100 * conf:g}% band of the Monte Carlo mean",
                frac,
                conf,
                f">= {tol.t1_min_inside}",
                bool(frac >= tol.t1_min_inside),
                batch_size=int(d["batch_size"].iloc[0]),
                eta=float(d["eta"].iloc[0]),
                beta=float(d["beta"].iloc[0]),
                runs=int(d["runs"].iloc[0]),
                max_abs_z=float(np.abs(z[k])),
                at_step=int(d["step"].iloc[k]),
                median_abs_z=float(np.median(np.abs(z))),
                gaussian_rows_curve_share_inside=inside("gaussian"),
                max_rel_diff_gaussian_vs_exact=float(
                    np.max(np.abs(d["gaussian"] / d["exact"] - 1))
                ),
                noise_free_curve_share_inside=inside("noise_free"),
            ),
        ],
        "figure": FIG_T1,
    }


FIG_T1 = "exact_vs_monte_carlo"
# How T1 is judged, for the report. The tolerance is below the band's nominal coverage
# because the per-run loss is heavy-tailed late in a run (at the quick profile's HB point,
# the largest of 4000 runs was 45x the mean at t = 1200): with a few hundred runs the
# normal-theory band under-covers in long, correlated stretches. In a development
# calibration (30 independent Monte Carlo batches of 400 runs, quick problem, HB rule point
# at B = 64) the exact curve was inside the 99% band at >= 95% of the steps in 24/30
# batches, >= 90% in 27/30 and >= 80% in 29/30 (Nesterov's rule point: 30/30 at every
# threshold), while a noise operator off by 5% either way was inside at < 80% of the
# steps in 30/30 batches for both methods.
T1_CRITERION = (
    "T1 passes when the exact curve lies inside the Monte Carlo mean's two-sided band "
    "(mean +/- z stderr at the configured confidence) at no fewer than the tolerated share "
    "of the steps t >= 1."
)


def build_claims(
    tuned: pd.DataFrame,
    tuned_runs: pd.DataFrame,
    meta: dict,
    deterministic: dict[str, float],
    tol: Tolerances,
    source: str,
    methods=("hb", "nag"),
    *,
    rule: pd.DataFrame | None = None,
    exact: pd.DataFrame | None = None,
    knees: dict | None = None,
    montecarlo: pd.DataFrame | None = None,
    rule_variants: dict | None = None,
) -> list[dict]:
    """Claims C1-C3 (and C4 where ``rule`` has rows) for each momentum method present in
    ``tuned``, then T1 for each method in ``montecarlo``. ``exact`` (the exact-theory
    table) and ``knees`` add the theory's predictions to the details."""
    problem = str(tuned["problem"].iloc[0])
    sampler = str(tuned["sampler"].iloc[0])
    has_rule = rule is not None and not rule.empty
    out = []
    for method in methods:
        if method not in set(tuned["method"]):
            continue
        claims = [
            ("C1", claim_c1(tuned, meta, method, tol, exact)),
            ("C2", claim_c2(tuned_runs, meta, method, tol, exact)),
            (
                "C3",
                claim_c3(tuned, meta, method, deterministic.get(method, np.nan), tol, exact, knees),
            ),
        ]
        if has_rule and method in set(rule["method"]):
            variant = (rule_variants or {}).get(method)
            claims.append(("C4", claim_c4(tuned, rule, meta, method, tol, exact, variant)))
        for cid, c in claims:
            out.append(
                {
                    "id": cid,
                    "statement": STATEMENTS[cid],
                    "method": method,
                    "problem": problem,
                    "sampler": sampler,
                    "verdict": _verdict(c["checks"]),
                    "checks": c["checks"],
                    "figure": f"figures/{problem}/{sampler}/{c['figure']}.pdf",
                    "source": source,
                }
            )
    if montecarlo is not None:
        for method in dict.fromkeys(montecarlo["method"]):
            c = claim_t1(montecarlo, method, tol)
            out.append(
                {
                    "id": "T1",
                    "statement": STATEMENTS["T1"],
                    "method": method,
                    "problem": problem,
                    "sampler": sampler,
                    "verdict": _verdict(c["checks"]),
                    "checks": c["checks"],
                    "figure": f"figures/{problem}/{sampler}/{c['figure']}.pdf",
                    "source": source,
                }
            )
    return out


def _fmt(x) -> str:
    if isinstance(x, list):
        return ", ".join(_fmt(v) for v in x)
    if isinstance(x, float | np.floating):
        if not np.isfinite(x):
            return str(x)
        return f"{x:.3g}"
    return str(x)


def _variants_text(rule_variants: dict | None) -> str:
    if not rule_variants:
        return ""
    parts = [
        f"{m}: {v['noise_line']} noise line ({v.get('form', 'harmonic')} blend)"
        for m, v in sorted(rule_variants.items())
        if v
    ]
    return "; ".join(parts)


THEORY_TEXT = {
    "gaussian": "Exact theory: the `exact theory` entries in the details (slopes, knees, the "
    "rule's predicted ratios) come from the Gaussian-rows closed form of the exact "
    "mean-square recursion with this problem's eigenvalues, n and sampler: exact for "
    "Gaussian rows, an approximation for this finite matrix (for T1 the finite-sample "
    "operator of this A is used, which is exact).",
    "moments": "Exact theory: the `exact theory` entries in the details come from the moment "
    "closure of the mean-square recursion (theory.py): per eigen-mode second moments with "
    "this problem's own fourth moments under this sampler, exact when the sampler's noise "
    "keeps H's eigen-coordinates uncorrelated and an approximation otherwise. Measured on "
    "small instances against the exact operator: tuned counts within ~1-3% for Gaussian "
    "rows, Kaczmarz (also on heavy-tailed rows) and coordinate descent, but optimistic for "
    "heavy-tailed rows sampled uniformly, where its tuned (eta, beta) can diverge under the "
    "exact operator (tests/test_theory_samplers.py). T1 checks the sampler's full noise "
    "operator N(X) = E[(Z_S - H) X (Z_S - H)^T], which is exact, and reports the closure "
    "beside it.",
    None: "Exact theory: none for this pair (block Kaczmarz has none: a projection has no "
    "closed-form noise operator, its mean E[P_S] is not H, and the momentum rule, written in "
    "H's L, mu and tr H, is not run for it either), so there are no exact-theory entries.",
}


def to_markdown(
    claims: list[dict],
    meta: dict,
    rule_variants: dict | None = None,
    noise: str | None = "gaussian",
) -> str:
    """The human-readable report of one (problem, sampler): a summary line per claim,
    then every check. ``noise`` names the theory behind the exact-theory entries."""
    title = "# Claims report"
    if claims:
        title += f": {claims[0]['problem']} / {claims[0]['sampler']}"
    lines = [
        title,
        "",
        "Generated by `mbm claims` from the sweep results; every number below is measured "
        "in this run. A claim passes only if all of its checks pass.",
        "",
        f"Problem: n = {meta['n']}, d = {meta['d']}, kappa = {meta['kappa']:.4g}, "
        f"tr H / L = {meta['stable_rank']:.3g}, B*_SGD = {meta['B_sgd']:.3g}, "
        f"B_sat = {meta['B_sat']:.3g}.",
        "",
        THEORY_TEXT[noise] + " The exact counts T* = log(1/eps)/log(1/rho*) use the "
        "mean-square rate rho* at the rate-optimal constant (eta, beta); nothing is "
        "fitted to the sweeps.",
        "",
    ]
    variants = _variants_text(rule_variants)
    if any(c["id"] == "C4" for c in claims):
        lines += [
            "C4: the momentum rule (`minibatch_momentum.rule`, constants calibrated on the "
            "exact operator over reference spectra, never on this grid) is run inside every "
            "sweep shard on the same mini-batches as the grid, from the problem's spectrum "
            f"alone. Variant per method: {variants or 'n/a'}. Nesterov uses the eigenvalues "
            "because its noise line depends on how the trace is spread (with L and tr H alone "
            "the rule's worst case on the calibration set is 24x the optimum, against 1.5x "
            "with the spectrum); heavy ball needs only L, mu and tr H. A rule run that has not "
            "converged once it has taken censor_factor x the seed's fastest grid run is "
            "recorded as inf (ratio inf).",
            "",
        ]
    if any(c["id"] == "T1" for c in claims):
        lines += [
            f"T1 criterion: {T1_CRITERION} The tolerance sits below the band's nominal "
            "coverage because the per-run loss is heavy-tailed late in a run, so a few "
            "hundred runs give a normal-theory band that under-covers in long correlated "
            "stretches (development calibration, 30 independent batches of 400 runs at the "
            "heavy-ball point: >= 80% of steps inside in 29/30, >= 95% in 24/30; a noise "
            "operator off by 5% fell below 80% in 30/30). The Gaussian-rows curve and the "
            "noise-free curve are reported beside it; the latter is a negative control that "
            "must fall outside.",
            "",
        ]
    lines += [
        "| claim | method | verdict | check | measured | predicted | tolerance | figure |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        for i, ch in enumerate(c["checks"]):
            mark = {True: "ok", False: "**no**", None: "n/a"}[ch["pass"]]
            head = (c["id"], c["method"], f"**{c['verdict']}**") if i == 0 else ("", "", "")
            lines.append(
                f"| {' | '.join(head)} | {ch['check']} ({mark}) | {_fmt(ch['measured'])} | "
                f"{_fmt(ch['predicted'])} | {ch['tolerance']} | `{c['figure']}` |"
            )
    lines += ["", "## Details", ""]
    base = {"check", "measured", "predicted", "tolerance", "pass"}
    for c in claims:
        for ch in c["checks"]:
            extra = {k: v for k, v in ch.items() if k not in base}
            if extra:
                items = "; ".join(f"{k.replace('_', ' ')} = {_fmt(v)}" for k, v in extra.items())
                lines.append(f"- {c['id']} {c['method']}, {ch['check']}: {items}")
    lines += ["", "## Statements", ""]
    for cid, text in STATEMENTS.items():
        lines.append(f"- **{cid}**: {text}")
    lines.append("")
    return "\n".join(lines)


COVERAGE = {"C5": "sampler", "C6": "problem"}


def coverage_claims(claims: list[dict]) -> list[dict]:
    """C5 (per sampler) and C6 (per problem family) from the per-pair C1-C4 claims.

    A C5/C6 row for a (sampler or problem, method) holds one check per C1-C4 claim of
    that group, passing when the claim passed; its verdict follows the usual rule (any
    FAIL fails it, else any INCONCLUSIVE leaves it open). Empty when fewer than two
    (problem, sampler) pairs were swept: there is nothing to compare across.
    """
    base = [c for c in claims if c["id"] in ("C1", "C2", "C3", "C4")]
    if len({(c["problem"], c["sampler"]) for c in base}) < 2:
        return []
    out = []
    for cid, by in COVERAGE.items():
        groups: dict[tuple[str, str], list[dict]] = {}
        for c in base:
            groups.setdefault((c[by], c["method"]), []).append(c)
        for (key, method), members in groups.items():
            checks = [
                _check(
                    f"{m['id']} on {m['problem']} / {m['sampler']}",
                    m["verdict"],
                    PASS,
                    "all checks of the claim",
                    {PASS: True, FAIL: False}.get(m["verdict"]),
                )
                for m in members
            ]
            out.append(
                {
                    "id": cid,
                    "statement": STATEMENTS[cid],
                    "method": method,
                    "problem": key if by == "problem" else "all",
                    "sampler": key if by == "sampler" else "all",
                    "verdict": _coverage_verdict(checks),
                    "checks": checks,
                    "figure": "figures/coverage/tstar_grid.pdf",
                    "source": "per-pair claims",
                }
            )
    return out


def _coverage_verdict(checks: list[dict]) -> str:
    # A failed claim decides the group even when another one is still open.
    if any(c["pass"] is False for c in checks):
        return FAIL
    return INCONCLUSIVE if any(c["pass"] is None for c in checks) else PASS


def coverage_markdown(coverage: list[dict]) -> str:
    """The C5/C6 table that opens the report: one row per (sampler or family, method)."""
    lines = [
        "# Claims C5 and C6: samplers and problem families",
        "",
        "Each row gathers the C1-C4 verdicts of the per-pair reports below (figure: "
        "`figures/coverage/tstar_grid.pdf`, T*(B) of every pair with the exact theory and "
        "the breakpoints).",
        "",
        "| claim | over | method | verdict | passed | failed | inconclusive | failed claims |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in coverage:
        over = c["sampler"] if c["id"] == "C5" else c["problem"]
        ok = [ch for ch in c["checks"] if ch["pass"] is True]
        bad = [ch for ch in c["checks"] if ch["pass"] is False]
        open_ = [ch for ch in c["checks"] if ch["pass"] is None]
        names = ", ".join(ch["check"] for ch in bad) or "-"
        lines.append(
            f"| {c['id']} | {over} | {c['method']} | **{c['verdict']}** | {len(ok)} | "
            f"{len(bad)} | {len(open_)} | {names} |"
        )
    lines += ["", f"- **C5**: {STATEMENTS['C5']}", f"- **C6**: {STATEMENTS['C6']}", ""]
    return "\n".join(lines)


SEED_SYSTEMS = {
    "S1": "SNGM vs momentum SGD at equal large batch (Zhao et al.)",
    "S2": "momentum scaling 1 - beta* ~ eta^(2/3) under label noise (Cowsik, Can & Glorioso)",
    "S3": "small-learning-rate equivalence SGDM(eta, beta) ~ SGD(eta/(1-beta)) (Wang et al.)",
    "S4": "random scaling of momentum updates (Zhang & Cutkosky)",
    "S5": "batch threshold for stochastic heavy-ball acceleration (Dang et al.)",
    "S6": "baselines SNGM, ASGD, MaSS beside heavy ball and Nesterov",
    **{f"S7{k}": "search-direction noise of SGD with momentum (Sato & Iiduka)" for k in "abc"},
}


def seed_markdown(claims: list[dict]) -> str:
    """The seed systems' section of the report (DESIGN.md section 3): a row per check,
    then the details and statements, in the same layout as :func:`to_markdown`."""
    lines = [
        "# Seed systems",
        "",
        "The other seed systems of DESIGN.md section 3 (`mbm seed ...`), each with its own "
        "data, figure and tolerance; the statements and how each is measured are below the "
        "table. A claim passes only if all of its checks pass.",
        "",
        "| claim | method | system | verdict | check | measured | predicted | tolerance | figure |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(claims, key=lambda c: c["id"]):
        for i, ch in enumerate(c["checks"]):
            mark = {True: "ok", False: "**no**", None: "n/a"}[ch["pass"]]
            head = (
                (c["id"], c["method"], str(c.get("problem", "")), f"**{c['verdict']}**")
                if i == 0
                else ("", "", "", "")
            )
            cells = [
                f"{ch['check']} ({mark})",
                _fmt(ch["measured"]),
                _fmt(ch["predicted"]),
                str(ch["tolerance"]),
            ]
            cells = [x.replace("|", "\\|") for x in cells]  # a literal | ends a table cell
            lines.append(f"| {' | '.join(head)} | {' | '.join(cells)} | `{c['figure']}` |")
    lines += ["", "## Seed-system details", ""]
    base = {"check", "measured", "predicted", "tolerance", "pass"}
    for c in sorted(claims, key=lambda c: c["id"]):
        for ch in c["checks"]:
            extra = {k: v for k, v in ch.items() if k not in base}
            if extra:
                items = "; ".join(f"{k.replace('_', ' ')} = {_fmt(v)}" for k, v in extra.items())
                lines.append(f"- {c['id']} {c['method']}, {ch['check']}: {items}")
    lines += ["", "## Seed-system statements", ""]
    seen = {}
    for c in sorted(claims, key=lambda c: c["id"]):
        seen.setdefault(c["id"], c["statement"])
    for cid, text in seen.items():
        lines.append(f"- **{cid}** ({SEED_SYSTEMS.get(cid, 'seed system')}): {text}")
    lines.append("")
    return "\n".join(lines)
