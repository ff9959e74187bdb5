"""The curves the claims and figures read: every method's grid-tuned ``T_m(B)`` as
bootstrap replicates over seeds (:func:`measured_curves`), the exact theory's on the same
grid (:func:`exact_curves`), and the critical-batch ratios over kappa of claim C7 (exact,
:func:`exact_kappa_ratios`, and measured, :func:`scan_measurement`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from minibatch_momentum.analysis import scaling


def exact_kappa_ratios(scan: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(kappa, B_crit,HB / B_crit,SGD)`` of the exact kappa scan."""
    kappas, ratios = [], []
    for kappa, g in scan.groupby("kappa", sort=True):
        bc = {
            m: float(scaling.critical_batch(h["batch_size"], h["T"], h["T_det"].iloc[0]))
            for m, h in g.groupby("method")
        }
        kappas.append(float(kappa))
        ratios.append(bc["hb"] / bc["sgd"])
    return np.array(kappas), np.array(ratios)


def measured_curves(grid: pd.DataFrame, T_det: dict[str, float]) -> scaling.Curves:
    """Bootstrap replicates of every method's grid-tuned ``T_m(B)`` from a summary's
    ``grid`` table (one row per grid run: method, batch size, eta, beta, seed,
    iterations-to-eps, stable). Seeds are resampled together across methods and batch
    sizes (they share mini-batches), so speedups stay paired."""
    seeds = np.sort(grid["seed"].unique())
    weights = scaling.seed_weights(seeds.size)
    Bs, Ts = {}, {}
    for method, g in grid.groupby("method", sort=True):
        g = g.sort_values(["batch_size", "eta", "beta", "seed"])
        B = np.sort(g["batch_size"].unique())
        points = g.drop_duplicates(["eta", "beta"]).shape[0]
        if len(g) != B.size * points * seeds.size:
            raise ValueError(f"grid table of {method}: not every (B, point, seed) is present")
        with np.errstate(divide="ignore"):
            log_T = np.log(g["iters_to_eps"].to_numpy(float)).reshape(B.size, points, seeds.size)
        allowed = g["stable"].to_numpy(bool).reshape(B.size, points, seeds.size)[0, :, 0]
        Bs[method], Ts[method] = B.astype(float), scaling.bootstrap_counts(log_T, allowed, weights)
    return scaling.Curves(Bs, Ts, {m: float(T_det[m]) for m in Bs})


def exact_curves(table: pd.DataFrame | None, T_det: dict[str, float]) -> scaling.Curves | None:
    """The exact theory's grid-tuned ``T_m(B)``
    (:func:`~minibatch_momentum.theory.exact.grid_table`) as one-replicate curves, with the
    same full-batch counts."""
    if table is None or table.empty:
        return None
    Bs, Ts = {}, {}
    for method, g in table.groupby("method", sort=True):
        g = g.sort_values("batch_size")
        Bs[method] = g["batch_size"].to_numpy(float)
        Ts[method] = g["T_curve"].to_numpy(float)[None, :]
    return scaling.Curves(Bs, Ts, {m: float(T_det[m]) for m in Bs})


def scan_measurement(summaries: dict, exact_grids: dict) -> dict | None:
    """C7 from the sweeps: ``B_crit,HB / B_crit,SGD`` per kappa-scan problem, bootstrap
    replicates resampled independently per problem, and the exact grid-tuned ratio."""
    if not summaries:
        return None
    kappas, ratios, exact_ratios, names = [], [], [], []
    for name, s in summaries.items():
        det = {k: float(v) for k, v in s["summary"]["deterministic_T"].items()}
        curves = measured_curves(s["grid"], det)
        q = {m: curves.quantities(m)["B_crit"] for m in ("sgd", "hb")}
        ex = exact_curves(exact_grids.get(name), det)
        if ex is not None:
            e = {m: ex.quantities(m)["B_crit"][0] for m in ("sgd", "hb")}
            exact_ratios.append(float(e["hb"] / e["sgd"]))
        else:
            exact_ratios.append(float("nan"))
        kappas.append(float(s["summary"]["problem"]["kappa"]))
        ratios.append(q["hb"] / q["sgd"])
        names.append(name)
    order = np.argsort(kappas)
    return {
        "kappa": np.asarray(kappas)[order],
        "ratio": np.stack(ratios, axis=1)[:, order],
        "exact_ratio": np.asarray(exact_ratios)[order].tolist(),
        "problems": [names[i] for i in order],
    }
