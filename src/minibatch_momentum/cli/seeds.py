"""``mbm seed``: the seed systems of docs/design.md section 2 (S1-S7) as thin subcommands.

Each reads files and writes files; the work is in :mod:`minibatch_momentum.studies`.
A system writes its data (``results/seeds/<name>.parquet``) and its claims-report
entries with the analysis behind them (``results/seeds/<name>.claims.json``:
``{"claims": [...], "analysis": {...}}``), which ``mbm claims --extra`` merges into the
report and ``mbm seed figure`` draws.

    mbm seed large-batch     --spec JSON --out DATA.parquet --claims C.json      (S1, S4)
    mbm seed label-noise     --spec JSON --out DATA.parquet --claims C.json      (S2)
    mbm seed small-lr        --problem P.npz --runs SHARD... --spec JSON
                             --out DATA.parquet --claims C.json                 (S3)
    mbm seed threshold       --spec JSON --out DATA.parquet --claims C.json      (S5)
    mbm seed baseline-shard  --problem P.npz --spec JSON --out METHOD.parquet    (S6)
    mbm seed baselines       --problem P.npz --runs SHARD... --summary DIR --spec JSON
                             --out DATA.parquet --claims C.json                 (S6)
    mbm seed search-noise    --spec JSON --out DATA.parquet --claims C.json      (S7)
    mbm seed figure NAME     --data DATA.parquet --claims C.json --out FIG.pdf

``--spec`` for ``large-batch``, ``label-noise``, ``threshold`` and ``search-noise`` is
``{"preset": "quick" | "paper", "overrides": {field: value}}`` (fields of the experiment's
config dataclass);
``small-lr`` takes :class:`~minibatch_momentum.studies.small_lr.SmallLRConfig`'s
fields, ``baselines`` :class:`~minibatch_momentum.studies.baselines.BaselinesConfig`'s
and ``baseline-shard`` one method's grid with the sweeps' stopping rule (see
:func:`cmd_baseline_shard`). Errors name the field and exit with status 2 (``mbm``'s
convention).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

from minibatch_momentum.cli.flags import add_device_arguments
from minibatch_momentum.io import log as _log
from minibatch_momentum.io import parse_spec as _spec
from minibatch_momentum.io import write_parquet
from minibatch_momentum.sampling.samplers import UNIFORM_SAMPLERS, check_batch_sizes

FIGURES = {
    "large_batch": "S1, S4: SNGM and random-scaled SGDM vs momentum SGD on digits",
    "label_noise_momentum": "S2: optimal momentum against the learning rate under label noise",
    "small_lr_equivalence": "S3: SGDM(eta, beta) against SGD(eta / (1 - beta)) at small B",
    "batch_threshold": "S5: batch threshold for heavy-ball acceleration against kappa",
    "baselines_vs_batch": "S6: tuned T*(B) of SGD, HB, NAG, SNGM, ASGD, MaSS",
    "search_noise": "S7: search-direction noise of SGD and heavy ball against B, beta, accuracy",
}


def _preset_config(cls, spec: dict):
    """``cls.preset(spec["preset"])`` with ``spec["overrides"]`` applied (errors name the
    field)."""
    unknown = sorted(set(spec) - {"preset", "overrides"})
    if unknown:
        raise ValueError(f"unknown spec field(s) {unknown}: expected preset and overrides")
    base = cls.preset(spec.get("preset", "quick")).to_dict()
    overrides = spec.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ValueError("overrides: must be an object")
    names = set(base)
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"overrides: unknown field(s) {bad}")
    return cls.from_dict({**base, **overrides})


def restore_floats(obj):
    """Undo :func:`~minibatch_momentum.io.dumps`' strings for non-finite floats."""
    if isinstance(obj, str) and obj in ("nan", "inf", "-inf"):
        return float(obj)
    if isinstance(obj, dict):
        return {k: restore_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [restore_floats(v) for v in obj]
    return obj


def read_claims_file(path) -> tuple[list[dict], dict]:
    """``(claims, analysis)`` of a seed system's claims file. Also accepts a bare list of
    claims or a single claim object (``analysis`` is then empty)."""
    from minibatch_momentum.io import read_json

    data = read_json(path)
    if isinstance(data, list):
        return data, {}
    if isinstance(data, dict) and "claims" in data:
        return list(data["claims"]), restore_floats(data.get("analysis", {}))
    if isinstance(data, dict) and "id" in data and "checks" in data:
        return [data], {}
    raise ValueError(f"{path}: not a claims file (expected a 'claims' list)")


def _run_and_write(args, df, claims, analysis, meta: dict) -> None:
    """The data (``--out``, atomic Parquet with ``meta``) and the claims file."""
    from minibatch_momentum.io import write_json

    write_parquet(df, args.out, meta)
    write_json({"claims": claims, "analysis": analysis}, args.claims)
    for c in claims:
        _log(f"{c['id']} {c['method']}: {c['verdict']} -> {args.claims}")
    _log(f"{len(df)} rows -> {args.out}")


# --------------------------------------------------------------------------- commands


class _Study(NamedTuple):
    """A seed system that generates its own data: ``studies.<module>`` defines
    ``run_<name>(config, progress)``, ``analyze_<name>(df, config)`` (``<name>``: the
    subcommand's, ``-`` as ``_``), the config class
    (with ``preset`` and ``from_dict``) and the claim functions, each ``(analysis, data,
    figure)`` to a claim or a list of claims."""

    module: str
    config: str
    claims: tuple[str, ...]
    timing: str
    help: str
    figure: str


# Subcommand -> study. Their spec is {"preset": ..., "overrides": {...}}.
_SELF_CONTAINED = {
    "large-batch": _Study(
        "large_batch",
        "LargeBatchConfig",
        ("claim_s1", "claim_s4"),
        "S1/S4 runs",
        "S1, S4: SNGM and RS-SGDM vs MSGD on digits",
        "large_batch",
    ),
    "label-noise": _Study(
        "label_noise",
        "LabelNoiseConfig",
        ("claim_s2",),
        "S2 runs",
        "S2: 1 - beta* ~ eta^(2/3) under label noise",
        "label_noise_momentum",
    ),
    "threshold": _Study(
        "threshold",
        "ThresholdConfig",
        ("claim_s5",),
        "S5 exact thresholds",
        "S5: the exact batch threshold against kappa",
        "batch_threshold",
    ),
    "search-noise": _Study(
        "search_noise.study",
        "SearchNoiseConfig",
        ("claims_s7",),
        "S7 runs",
        "S7: search-direction noise of SGD and momentum",
        "search_noise",
    ),
}


def cmd_self_contained(args) -> None:
    """Run a study of :data:`_SELF_CONTAINED`, analyze it, write its data and claims."""
    import importlib

    study = _SELF_CONTAINED[args.system]
    mod = importlib.import_module(f"minibatch_momentum.studies.{study.module}")
    spec = _spec(args.spec)
    config = _preset_config(getattr(mod, study.config), spec)
    t0 = time.perf_counter()
    name = args.system.replace("-", "_")
    df = getattr(mod, f"run_{name}")(config, progress=_log)
    analysis = getattr(mod, f"analyze_{name}")(df, config)
    claims = []
    for name in study.claims:
        made = getattr(mod, name)(analysis, args.out, args.figure)
        claims.extend(made if isinstance(made, list) else [made])
    _log(f"{study.timing} in {time.perf_counter() - t0:.1f}s")
    _run_and_write(args, df, claims, analysis, {"spec": spec, "config": config.to_dict()})


def _problem_meta(path) -> dict:
    from minibatch_momentum.problems.system import load_problem

    return load_problem(path).spectral_summary()


def _read_runs(paths, columns):
    import pandas as pd
    import pyarrow.parquet as pq

    paths = list(paths)
    if not paths:
        raise ValueError("--runs: no shard files given")
    frames = []
    for p in paths:
        have = set(pq.read_schema(p).names)
        frames.append(pd.read_parquet(p, columns=[c for c in columns if c in have]))
    return pd.concat(frames, ignore_index=True)


def cmd_small_lr(args) -> None:
    from minibatch_momentum.studies import small_lr

    spec = _spec(args.spec)
    config = small_lr.SmallLRConfig.from_dict(spec)
    columns = "problem sampler method batch_size seed eta beta source iters_to_eps".split()
    runs = _read_runs(args.runs, columns)
    for col in ("problem", "sampler"):
        values = sorted(set(runs[col]))
        if len(values) != 1:
            raise ValueError(f"--runs: the shards must share one {col}, got {values}")
    missing = sorted({"sgd", *config.methods} - set(runs["method"]))
    if missing:
        raise ValueError(f"--runs: no shards of method(s) {missing}")
    df = small_lr.compare_effective_step(runs, config.methods)
    analysis = small_lr.analyze_small_lr(df, _problem_meta(args.problem), config)
    claims = small_lr.claim_s3(
        analysis, runs["problem"].iloc[0], runs["sampler"].iloc[0], args.out, args.figure
    )
    _run_and_write(args, df, claims, analysis, {"spec": spec, "shards": len(args.runs)})


def cmd_baseline_shard(args) -> None:
    """One S6 method at each batch size of its grid (one process: a job's start-up costs
    more than a small shard). Spec: ``problem`` (name), ``method``, ``sampler``, ``seeds``,
    ``stop`` (the sweeps' stopping rule) and ``grid`` (the method's grid with its
    ``batch_sizes``, :class:`~minibatch_momentum.studies.baselines.BaselineGrid`
    fields)."""
    import pandas as pd

    from minibatch_momentum.problems.system import load_problem
    from minibatch_momentum.simulate.engine import StopRule, use_threads
    from minibatch_momentum.studies.baselines import (
        BaselineGrid,
        BaselinesConfig,
        run_baseline_shard,
    )

    use_threads(args.threads)
    spec = _spec(args.spec)
    for key in ("problem", "method", "grid", "stop"):
        if key not in spec:
            raise KeyError(key)
    unknown = sorted(set(spec) - {"problem", "method", "sampler", "seeds", "grid", "stop"})
    if unknown:
        raise ValueError(f"unknown baseline shard field(s): {unknown}")
    method = spec["method"]
    sampler = spec.get("sampler", "without_replacement")
    if sampler not in UNIFORM_SAMPLERS:
        raise ValueError(f"sampler: must be one of {list(UNIFORM_SAMPLERS)}, got {sampler!r}")
    grid = BaselineGrid.from_dict(method, spec["grid"])
    config = BaselinesConfig(**{method: grid, "seeds": spec.get("seeds", 3)})
    try:
        stop = StopRule(**spec["stop"])
    except TypeError as exc:
        raise ValueError(f"stop: {exc}") from None
    problem = load_problem(args.problem)
    check_batch_sizes(problem, sampler, grid.batch_sizes)
    t0 = time.perf_counter()
    df = pd.concat(
        [
            run_baseline_shard(
                problem,
                spec["problem"],
                method,
                B,
                config,
                stop,
                sampler=sampler,
                device=args.device,
                progress=_log,
            )
            for B in grid.batch_sizes
        ],
        ignore_index=True,
    )
    write_parquet(df, args.out, {"spec": spec})
    _log(f"{len(df)} runs in {time.perf_counter() - t0:.1f}s -> {args.out}")


def cmd_baselines(args) -> None:
    import pandas as pd

    from minibatch_momentum.studies import baselines

    spec = _spec(args.spec)
    config = baselines.BaselinesConfig.from_dict(spec)
    columns = "problem method sampler batch_size seed config eta beta kappa xi eta2 iters_to_eps"
    runs = _read_runs(args.runs, columns.split())
    classical = pd.read_parquet(Path(args.summary) / "tuned.parquet")
    table = baselines.baseline_table(baselines.tune_baselines(runs), classical)
    analysis = baselines.analyze_baselines(table, _problem_meta(args.problem), config)
    problem, sampler = str(classical["problem"].iloc[0]), str(classical["sampler"].iloc[0])
    claims = [baselines.claim_s6(analysis, problem, sampler, args.out, args.figure)]
    _run_and_write(args, table, claims, analysis, {"spec": spec, "shards": len(args.runs)})


def cmd_figure(args) -> None:
    import pandas as pd

    from minibatch_momentum.figures import studies as figures

    df = pd.read_parquet(args.data)
    _, analysis = read_claims_file(args.claims)
    if not analysis:
        raise ValueError(f"--claims: {args.claims} holds no analysis")
    draw = {
        "large_batch": figures.large_batch_figure,
        "label_noise_momentum": figures.label_noise_figure,
        "small_lr_equivalence": figures.small_lr_figure,
        "batch_threshold": figures.threshold_figure,
        "baselines_vs_batch": figures.baselines_figure,
        "search_noise": figures.search_noise_figure,
    }[args.name]
    draw(df, analysis, args.out)
    _log(f"figure {args.name} -> {args.out}")


# --------------------------------------------------------------------------- parser


def _outputs(s, figure: str) -> None:
    s.add_argument("--out", required=True, help="the system's data (.parquet)")
    s.add_argument("--claims", required=True, help="its claims file (.claims.json)")
    s.add_argument(
        "--figure",
        default=f"figures/seeds/{figure}.pdf",
        help="the figure the claims entries name (default: %(default)s)",
    )


def add_parsers(sub) -> None:
    """Register ``seed`` and its subcommands on ``mbm``'s subparsers."""
    p = sub.add_parser("seed", help="the seed systems S1-S7 (docs/design.md section 2)")
    ss = p.add_subparsers(dest="system", required=True)

    for command, study in _SELF_CONTAINED.items():
        s = ss.add_parser(command, help=study.help)
        s.add_argument("--spec", required=True, help='{"preset": ..., "overrides": {...}}')
        _outputs(s, study.figure)
        s.set_defaults(func=cmd_self_contained)

    s = ss.add_parser("small-lr", help="S3: SGDM(eta, beta) vs SGD(eta/(1-beta)) from the sweeps")
    s.add_argument("--problem", required=True, help="the problem file (for B*_SGD, B_sat)")
    s.add_argument("--runs", required=True, nargs="+", help="sweep shards: sgd and momentum")
    s.add_argument("--spec", required=True, help="SmallLRConfig fields as JSON")
    _outputs(s, "small_lr_equivalence")
    s.set_defaults(func=cmd_small_lr)

    s = ss.add_parser("baseline-shard", help="S6: one baseline method at its batch sizes")
    s.add_argument("--problem", required=True)
    s.add_argument("--spec", required=True, help="shard spec as JSON (see cmd_baseline_shard)")
    s.add_argument("--out", required=True)
    add_device_arguments(s)
    s.set_defaults(func=cmd_baseline_shard)

    s = ss.add_parser("baselines", help="S6: tune the baseline shards, table and claim")
    s.add_argument("--problem", required=True)
    s.add_argument("--runs", required=True, nargs="+", help="baseline shards")
    s.add_argument("--summary", required=True, help="the same problem's summary folder")
    s.add_argument("--spec", required=True, help="BaselinesConfig fields as JSON")
    _outputs(s, "baselines_vs_batch")
    s.set_defaults(func=cmd_baselines)

    s = ss.add_parser("figure", help="render one seed-system figure (PDF, and PNG beside it)")
    s.add_argument("name", choices=sorted(FIGURES))
    s.add_argument("--data", required=True, help="the system's .parquet")
    s.add_argument("--claims", required=True, help="the system's .claims.json")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure)
