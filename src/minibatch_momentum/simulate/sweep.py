"""Sweep shards: a (problem, method, sampler, batch size) over an (eta, beta) grid and seeds.

A shard is the unit of computation; a sweep job runs one method's shards, every batch
size of its study, in one process (a job's start-up, mostly importing torch, costs more
than many small shards). Its result is one Parquet file, one row per (batch size, seed,
eta, beta) run, holding iterations-to-eps, the run's status and its loss curve, with the
job's spec and package version in the file's metadata.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from minibatch_momentum.checks import is_int as _is_int
from minibatch_momentum.grid import Grid, grid_scale
from minibatch_momentum.problems.system import Problem
from minibatch_momentum.sampling.samplers import SAMPLERS, check_batch_sizes, sampling
from minibatch_momentum.simulate.engine import METHODS, StopRule, resolve_device, run_grid
from minibatch_momentum.theory.common import stable_region
from minibatch_momentum.theory.rule import RuleSpec


@dataclass(frozen=True)
class ShardSpec:
    """Everything that determines a shard's numbers (and nothing that does not)."""

    problem: str
    method: str
    batch_size: int
    sampler: str = "without_replacement"
    seeds: tuple[int, ...] = (0, 1, 2)
    grid: Grid = field(default_factory=Grid)
    stop: StopRule = field(default_factory=StopRule)
    dtype: str = "float64"
    rule: RuleSpec | None = None

    def __post_init__(self):
        _require(self.method in METHODS, "method", f"one of {list(METHODS)}")
        _require(self.sampler in SAMPLERS, "sampler", f"one of {list(SAMPLERS)}")
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size", "an integer >= 1")
        _require(len(self.seeds) >= 1, "seeds", "a non-empty list")
        _require(self.dtype in ("float64", "float32"), "dtype", "'float64' or 'float32'")

    @classmethod
    def from_dict(cls, d: dict) -> ShardSpec:
        """Build from plain data (the workflow passes JSON); errors name the field."""
        d = dict(d)
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown shard field(s): {sorted(unknown)}")
        missing = [f for f in ("problem", "method", "batch_size") if f not in d]
        if missing:
            raise ValueError(f"missing shard field(s): {missing}")
        try:
            grid = Grid(**d.pop("grid", {}))
        except TypeError as exc:
            raise ValueError(f"grid: {exc}") from None
        stop_fields = dict(d.pop("stop", {}))
        try:
            stop = StopRule(**stop_fields)
        except TypeError as exc:
            raise ValueError(f"stop: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"stop: {exc}") from None
        rule = d.pop("rule", None)
        if rule is not None:
            if not isinstance(rule, dict):
                raise ValueError("rule: must be null or an object")
            try:
                rule = RuleSpec(**rule)
            except TypeError as exc:
                raise ValueError(f"rule: {exc}") from None
        seeds = d.pop("seeds", (0, 1, 2))
        seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
        return cls(grid=grid, stop=stop, seeds=seeds, rule=rule, **d)

    def to_dict(self) -> dict:
        return asdict(self)


def job_shards(d: dict) -> list[ShardSpec]:
    """The shards of one sweep job: ``d`` holds a :class:`ShardSpec`'s fields with
    ``batch_sizes`` (a non-empty list) in place of ``batch_size``. Errors name the field."""
    d = dict(d)
    if "batch_size" in d:
        raise ValueError("batch_size: a sweep job takes batch_sizes (a list)")
    sizes = d.pop("batch_sizes", None)
    _require(isinstance(sizes, list) and len(sizes) >= 1, "batch_sizes", "a non-empty list")
    _require(len(set(map(str, sizes))) == len(sizes), "batch_sizes", "without repeats")
    return [ShardSpec.from_dict({**d, "batch_size": B}) for B in sizes]


def _require(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise ValueError(f"{name}: must be {what}")


def shard_points(problem: Problem, spec: ShardSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(eta, beta, source)`` of a shard's runs: the grid, then the rule's point if the
    spec asks for it. The rule sees the problem's spectrum only (never any run)."""
    from minibatch_momentum.theory.rule import rule_for_spectrum

    draws = sampling(problem, spec.sampler)
    eta, beta = spec.grid.points(spec.method, grid_scale(problem, spec.sampler))
    source = np.full(eta.size, "grid", dtype=object)
    # The rule is written in L, mu and tr H of a gradient estimate with E[Z_S] = H; a
    # block projection has neither, so its shards run the grid alone.
    if spec.rule is not None and not draws.project:
        r_eta, r_beta = rule_for_spectrum(
            spec.method,
            spec.batch_size,
            problem.eigvals,
            noise_line=spec.rule.noise_line,
            n=draws.m,
            replace=draws.replace,
            form=spec.rule.form,
        )
        eta, beta = np.append(eta, r_eta), np.append(beta, r_beta)
        source = np.append(source, "rule")
    return eta, beta, source.astype(str)


def run_shard(
    problem: Problem,
    spec: ShardSpec,
    device: str = "auto",
    progress=None,
) -> pd.DataFrame:
    """Run every seed of a shard; one row per (seed, eta, beta) run.

    The ``source`` column says where a run's ``(eta, beta)`` came from: ``"grid"``, or
    ``"rule"`` for the momentum rule's point (when ``spec.rule`` is set). The rule's run
    shares each seed's mini-batches with the grid, and only grid runs start the censoring
    clock, so the grid's results are the same with or without it.
    """
    import torch

    eta, beta, source = shard_points(problem, spec)
    grid = source == "grid"
    # Only grid points inside the stability region start the censoring clock: a point that
    # tuning may never choose must not cut the runs it may choose short.
    L = grid_scale(problem, spec.sampler)
    leaders = grid & stable_region(spec.method, eta * L, beta)
    dev = resolve_device(device)
    frames = []
    for seed in spec.seeds:
        t0 = time.perf_counter()
        res = run_grid(
            problem,
            spec.method,
            spec.batch_size,
            eta,
            beta,
            seed=seed,
            stop=spec.stop,
            sampler=spec.sampler,
            device=dev,
            dtype=getattr(torch, spec.dtype),
            leaders=leaders,
        )
        seconds = time.perf_counter() - t0
        frames.append(
            pd.DataFrame(
                {
                    "problem": spec.problem,
                    "method": spec.method,
                    "sampler": spec.sampler,
                    "batch_size": spec.batch_size,
                    "seed": seed,
                    "eta": eta,
                    "beta": beta,
                    "source": source,
                    "iters_to_eps": res.iters_to_eps,
                    "status": res.status,
                    "steps_run": res.steps_run,
                    "diverged_at": res.diverged_at,
                    "final_loss": res.final_loss,
                    "curve_step": [c[0] for c in res.curves],
                    "curve_loss": [c[1] for c in res.curves],
                }
            )
        )
        if progress:
            best = np.min(res.iters_to_eps[grid])
            ruled = f", rule T={res.iters_to_eps[~grid][0]:g}" if (~grid).any() else ""
            progress(
                f"{spec.problem} {spec.method} B={spec.batch_size} seed={seed}: "
                f"best T={best:g}{ruled}, {int(res.steps_run.sum())} run-steps in {seconds:.1f}s"
            )
    return pd.concat(frames, ignore_index=True)


def run_shards(problem: Problem, specs, device: str = "auto", progress=None) -> pd.DataFrame:
    """:func:`run_shard` for each spec of a job, in order, as one table. Every batch size
    is checked against the problem before the first shard runs."""
    for spec in specs:
        check_batch_sizes(problem, spec.sampler, [spec.batch_size])
    return pd.concat([run_shard(problem, s, device, progress) for s in specs], ignore_index=True)
