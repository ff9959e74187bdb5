"""The claims report's claims on the sweeps: each claim of the design page
(docs/design.md, "Claims") measured and judged, per (problem, sampler) pair
(:func:`build_claims`: C1-C3 and T2 from :mod:`.scaling_claims`, C4, T1), over the kappa
scan (:func:`claim_c7`) and over samplers and problem families (:func:`coverage_claims`:
C5, C6).

Every claim is a list of checks (:mod:`.records`). A claim passes when all its checks do,
is ``INCONCLUSIVE`` when the data cannot decide (e.g. the batch grid does not reach the
window a check needs), and otherwise FAILS, with the numbers beside the verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from minibatch_momentum.analysis import scaling
from minibatch_momentum.report.curves import (
    exact_curves,
    exact_kappa_ratios,
    measured_curves,
)
from minibatch_momentum.report.records import FAIL, PASS, check_record, claim_record
from minibatch_momentum.report.scaling_claims import SCALING, PairData, Tolerances, claim_t2, judge

STATEMENTS = {
    "C1": "Perfect parallelization: with tuned momentum, doubling B halves the iterations "
    "far beyond the batch size where SGD stops scaling (parallel efficiency eff(B) >= 1/2 "
    "up to B_sat/4 while SGD's has dropped below 1/2 at 4 B*_SGD).",
    "C2": "Acceleration grows in proportion to B: momentum's speedup R(B) = T_SGD/T_m is "
    "about 1 below B*_SGD/2, and the speedup per unit of batch A(B) = R(B) B_crit,SGD / B "
    "stays near 1 between 4 B*_SGD and B_sat/4.",
    "C3": "Saturation at a natural point, at the deterministic accelerated rate: the "
    "critical batch B_crit = min_B B T(B) / T_det is within a factor of B_sat, and at the "
    "largest batch T is within a factor of the full-batch count.",
    "C4": "Simple momentum choice works: the momentum rule's (eta, beta), computed from the "
    "problem's spectrum alone, reaches eps within a factor of the grid-searched best at every B.",
    "C5": "It holds for heavy ball and Nesterov under every sampler: uniform mini-batches, "
    "randomized Kaczmarz (row-norm sampling, normalized rows) and coordinate descent "
    "(C1-C4 per method and sampler, over every problem swept with that sampler).",
    "C6": "It needs only minimal assumptions on the noise: non-Gaussian rows, uneven row "
    "norms, real data (C1-C4 per method and problem family, over every sampler swept on it).",
    "C7": "The natural point is kappa_bar/sqrt(kappa): momentum multiplies the critical batch "
    "by about sqrt(kappa) (the exponent of B_crit,HB / B_crit,SGD against kappa is 1/2).",
    "T1": "The exact mean-square theory is exact: the exact E f(x_t) curve (finite-sample "
    "operator of this A) lies inside the Monte Carlo confidence band of the engine's mean.",
    "T2": "Theory and experiment agree with nothing fitted: every measured T_m(B) is within "
    "a factor of the exact theory's expected-loss count tuned on the same grid.",
}


def claim_c7(scan: pd.DataFrame, measured: dict | None, tol: Tolerances) -> dict:
    """The exponent of ``B_crit,HB / B_crit,SGD`` against ``kappa``: from the exact theory
    over ``scan`` (:func:`~minibatch_momentum.theory.exact.kappa_scan`) and, with ``measured``
    (``{"kappa": (k,), "ratio": (replicates, k)}``), from the sweeps."""
    t = tol.kappa_exponent
    kappas, ratios = exact_kappa_ratios(scan)
    ex = float(scaling.loglog_exponent(kappas, ratios))
    te = tol.kappa_exponent_exact_tol
    checks = [
        check_record(
            f"exponent of B_crit,HB / B_crit,SGD vs kappa, exact theory over kappa = "
            f"{kappas.min():.3g}..{kappas.max():.3g}",
            ex,
            t,
            f"{t} +/- {te}",
            bool(abs(ex - t) <= te),
            interval=None,
            marginal=False,
            kappas=kappas.tolist(),
            ratios=ratios.tolist(),
        )
    ]
    if measured is not None:
        k = np.asarray(measured["kappa"], float)
        ts = tol.kappa_exponent_sweep_tol
        point, ci, ok, marg = judge(scaling.loglog_exponent(k, measured["ratio"]), t - ts, t + ts)
        decades = float(np.log10(k.max() / k.min())) if k.size else 0.0
        enough = k.size >= 3 and decades >= 1.5
        checks.append(
            check_record(
                "the same exponent from the sweeps over kappa = "
                + ", ".join(f"{x:.3g}" for x in k),
                point,
                float(scaling.loglog_exponent(k, np.asarray(measured["exact_ratio"], float))),
                f"{t} +/- {ts}",
                ok if enough else None,
                interval=ci,
                marginal=marg,
                kappas=k.tolist(),
                ratios=np.asarray(measured["ratio"])[0].tolist(),
                exact_ratios=list(measured["exact_ratio"]),
                problems=list(measured.get("problems", [])),
                **({} if enough else {"undecided": "needs >= 3 kappas over >= 1.5 decades"}),
            )
        )
    return {"checks": checks, "figure": "figures/coverage/kappa_scan.pdf"}


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
    _, eR = _exact_curve(exact, method, "rule_T_curve")
    ex_ratio = {int(b): float(x / y) for b, x, y in zip(eB, eR, eT, strict=True) if b in Bs}
    ex_worst = max(ex_ratio.values()) if ex_ratio else float("nan")
    return {
        "checks": [
            check_record(
                f"max over B of T_rule/T_grid-best for {method} (geometric means over seeds)",
                worst,
                ex_worst,
                f"<= {f} at every B",
                ok,
                interval=None,
                marginal=False,
                batch_sizes=[int(b) for b in Bs],
                ratios=ratio.tolist(),
                failing_batch_sizes=[int(b) for b, x in zip(Bs, ratio, strict=True) if x > f],
                unjudged_batch_sizes=[int(b) for b, j in zip(Bs, judged, strict=True) if not j],
                exact_theory_ratios=[ex_ratio.get(int(b), float("nan")) for b in Bs],
                predicted_is="exact-theory max of T_rule/T* (expected-loss counts)",
                rule_variant=variant or {},
            ),
        ],
        "figure": "rule_vs_grid",
    }


def _exact_curve(exact: pd.DataFrame | None, method: str, col: str = "T_curve"):
    """``(B, T)`` of the rate-optimal exact table for ``method`` (empty without one)."""
    if exact is None or method not in set(exact["method"]):
        return np.array([]), np.array([])
    t = exact[exact["method"] == method].sort_values("batch_size")
    return t["batch_size"].to_numpy(float), t[col].to_numpy(float)


def claim_t1(mc: pd.DataFrame, method: str, tol: Tolerances) -> dict:
    """Share of the steps ``t >= 1`` at which the exact curve lies inside the Monte Carlo
    band (see :data:`T1_CRITERION`)."""
    d = mc[(mc["method"] == method) & (mc["step"] >= 1)].sort_values("step")
    if d.empty:
        return {
            "checks": [
                check_record("T1 data", np.nan, np.nan, "", None, interval=None, marginal=False)
            ],
            "figure": FIG_T1,
        }

    def inside(col):
        return float(np.mean((d[col] >= d["lower"]) & (d[col] <= d["upper"])))

    conf = float(d["confidence"].iloc[0])
    z = ((d["mc_mean"] - d["exact"]) / d["mc_stderr"]).to_numpy()
    frac = inside("exact")
    k = int(np.argmax(np.abs(z)))
    return {
        "checks": [
            check_record(
                f"share of steps 1..{int(d['step'].max())} where the exact E f(x_t)/f(x_0) "
                f"lies inside the {100 * conf:g}% band of the Monte Carlo mean",
                frac,
                conf,
                f">= {tol.t1_min_inside}",
                bool(frac >= tol.t1_min_inside),
                interval=None,
                marginal=False,
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
    summary: dict,
    tol: Tolerances,
    source: str,
    methods=("hb", "nag"),
    *,
    exact_grid: pd.DataFrame | None = None,
    exact: pd.DataFrame | None = None,
    montecarlo: pd.DataFrame | None = None,
) -> list[dict]:
    """Claims C1-C3, T2 (and C4 where the summary has rule rows) for each momentum method
    present, T2 for SGD, then T1 for each method in ``montecarlo``.

    ``summary`` is :func:`~minibatch_momentum.analysis.summary.read_summary`'s dict; ``exact_grid``
    the exact theory tuned on the same grid (C1-C3's predictions and T2), ``exact`` the
    rate-optimal exact table (C4's predicted ratios).
    """
    info = summary["summary"]
    meta = info["problem"]
    tuned = summary["tuned"]
    problem, sampler = str(tuned["problem"].iloc[0]), str(tuned["sampler"].iloc[0])
    det = {k: float(v) for k, v in info["deterministic_T"].items()}
    pair = PairData(measured_curves(summary["grid"], det), exact_curves(exact_grid, det), meta)
    rule = summary.get("rule")
    has_rule = rule is not None and not rule.empty
    out = []

    def add(cid, method, c):
        figure = f"figures/{problem}/{sampler}/{c['figure']}.pdf"
        out.append(
            claim_record(
                cid, STATEMENTS[cid], method, problem, sampler, c["checks"], figure, source
            )
        )

    for method in methods:
        if method not in pair.measured.T or "sgd" not in pair.measured.T:
            continue
        for cid, claim in SCALING.items():
            add(cid, method, claim(pair, method, tol))
        if has_rule and method in set(rule["method"]):
            variant = (info.get("rule") or {}).get(method)
            add("C4", method, claim_c4(tuned, rule, meta, method, tol, exact, variant))
    if pair.exact is not None:
        for method in pair.measured.T:
            add("T2", method, claim_t2(pair, method, tol))
    if montecarlo is not None:
        for method in dict.fromkeys(montecarlo["method"]):
            add("T1", method, claim_t1(montecarlo, method, tol))
    return out


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
                check_record(
                    f"{m['id']} on {m['problem']} / {m['sampler']}",
                    m["verdict"],
                    PASS,
                    "all checks of the claim",
                    {PASS: True, FAIL: False}.get(m["verdict"]),
                    interval=None,
                    marginal=False,
                )
                for m in members
            ]
            problem, sampler = (key, "all") if by == "problem" else ("all", key)
            out.append(
                claim_record(
                    cid,
                    STATEMENTS[cid],
                    method,
                    problem,
                    sampler,
                    checks,
                    "figures/coverage/tstar_grid.pdf",
                    "per-pair claims",
                )
            )
    return out
