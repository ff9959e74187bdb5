"""The JSON schema against the constraints declared in the library, value by value.

The schema (``workflow/config/schema.yaml``) checks a config before any job; the problem
job and the seed studies check their own inputs again with the rules declared beside the
code (``check_problem_spec``, each study config's ``RULES``). Two statements of one
constraint drift apart unless something compares them: here every bound, type and
enumeration a schema property declares is probed at and around its edges, and the schema
and the library must accept exactly the same values. Defaults are compared too.
"""

from __future__ import annotations

import copy
import math

import pytest
import yaml

from minibatch_momentum.config import SCHEMA, schema_validator
from minibatch_momentum.problems.families import check_problem_spec
from minibatch_momentum.studies.baselines import BaselineGrid, BaselinesConfig
from minibatch_momentum.studies.small_lr import SmallLRConfig

_SCHEMA = yaml.safe_load(SCHEMA.read_text())
_PROBLEM = _SCHEMA["properties"]["problems"]["additionalProperties"]
_SEEDS = _SCHEMA["properties"]["seeds"]["properties"]


def probes(prop: dict) -> list:
    """Values at and around every edge ``prop`` declares (bounds, type, enumeration)."""
    out = [None, "text", True, -1, 0, 0.5, 1, 2, 2.5, 1e12, math.inf]
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in prop:
            edge = prop[key]
            out += [edge, edge - 1, edge + 1, edge * (1 - 1e-9), edge * (1 + 1e-9) + 1e-12]
            if float(edge).is_integer():
                out += [int(edge), int(edge) - 1, int(edge) + 1]
    if "enum" in prop:
        out += [*prop["enum"], "nope"]
    if prop.get("type") == "array":
        items = prop.get("items", {}).get("enum", [])
        out = [[], ["nope"], *([m] for m in items), *([m, m] for m in items[:1]), list(items)]
    return out


def _accepts(build, data) -> bool:
    try:
        build(data)
    except ValueError:
        return False
    return True


def _same(value):  # repr keeps 1 and 1.0 and True apart in the ids and the sets
    return repr(value)


# ------------------------------------------------------------------------- problems

# One valid spec per (family, variant); a probe replaces one field of it.
_BASE = {
    "gaussian": {"family": "gaussian", "d": 4, "n": 64, "kappa": 10.0, "seed": 0},
    "gaussian_power": {
        "family": "gaussian", "d": 4, "n": 64, "alpha": 1.0, "profile": "power", "seed": 0,
    },
    "heavy_tailed": {"family": "heavy_tailed", "d": 4, "n": 64, "kappa": 10.0, "seed": 0},
    "digits_kernel": {"family": "digits_kernel", "n_samples": 64, "gamma": 0.5, "seed": 0},
    "matrix": {"family": "matrix", "path": "A.npy"},
}
_CROSS_FIELD = {  # constraints between fields, which the schema leaves to the library
    ("n", "gaussian"), ("n", "heavy_tailed"), ("n", "gaussian_power"),
    ("d", "gaussian"), ("d", "heavy_tailed"), ("d", "gaussian_power"),
}


def _cross_field(variant: str, field: str, value) -> bool:
    """A probe only a rule across fields can judge: d^alpha <= 1e9 (d = 4 here)."""
    big = isinstance(value, int | float) and not isinstance(value, bool) and value > 14
    return variant == "gaussian_power" and field == "alpha" and big and math.isfinite(value)


def _schema_accepts(spec: dict, schema: dict = _PROBLEM) -> bool:
    """As the workflow validates (its validator fills defaults: on a copy)."""
    return schema_validator(schema).is_valid(copy.deepcopy(spec))


def _library_accepts(spec: dict) -> bool:
    return _accepts(check_problem_spec, spec)


def _problem_cases():
    for variant, base in _BASE.items():
        assert _schema_accepts(base) and _library_accepts(base), variant
        for field, prop in _PROBLEM["properties"].items():
            if field == "family" or (field, variant) in _CROSS_FIELD:
                continue
            if not _library_accepts({**base, field: _a_valid(prop, base.get(field))}):
                continue  # the field does not apply to this family (both refuse it)
            for value in probes(prop):
                if not _cross_field(variant, field, value):
                    yield pytest.param(
                        variant, field, value, id=f"{variant}-{field}-{_same(value)}"
                    )


def _a_valid(prop: dict, current):
    if current is not None:
        return current
    if "enum" in prop:
        return prop["enum"][0]
    if prop.get("type") == "string":
        return "b.npy"
    low = prop.get("minimum", prop.get("exclusiveMinimum", 0))
    high = prop.get("maximum", prop.get("exclusiveMaximum", low + 2))
    mid = (low + high) / 2
    return int(mid) if prop.get("type") == "integer" else mid


@pytest.mark.parametrize(("variant", "field", "value"), list(_problem_cases()))
def test_the_schema_and_check_problem_spec_accept_the_same_values(variant, field, value):
    spec = {**_BASE[variant], field: value}
    assert _schema_accepts(spec) == _library_accepts(spec), spec


@pytest.mark.parametrize("variant", ["gaussian", "heavy_tailed"])
def test_d_and_n_agree_where_no_cross_field_rule_applies(variant):
    for field, other in (("d", "n"), ("n", "d")):
        for value in probes(_PROBLEM["properties"][field]):
            spec = {**_BASE[variant], field: value}
            if isinstance(value, int) and not isinstance(value, bool):
                spec[other] = value  # n = d: square, the smallest full-rank system
            assert _schema_accepts(spec) == _library_accepts(spec), spec


# ------------------------------------------------------------------ seed studies

# study -> (its config class, a valid section as the schema sees it)
_STUDIES = {
    "small_lr": (SmallLRConfig, {}),
    "baselines": (BaselinesConfig, BaselinesConfig.preset("quick").to_dict()),
}


def _section_schema(study: str) -> dict:
    return {**_SEEDS[study], "$defs": _SCHEMA["$defs"]}  # the grids are a $ref


def _study_cases():
    for study in _STUDIES:
        for field, prop in _SEEDS[study]["properties"].items():
            for value in probes(prop) if "$ref" not in prop else []:
                yield pytest.param(study, field, value, id=f"{study}-{field}-{_same(value)}")


@pytest.mark.parametrize(("study", "field", "value"), list(_study_cases()))
def test_the_schema_and_the_study_rules_accept_the_same_values(study, field, value):
    cls, base = _STUDIES[study]
    data = {**base, field: value}
    assert _schema_accepts(data, _section_schema(study)) == _accepts(cls.from_dict, data), data


def _grid_cases():
    grid = _SCHEMA["$defs"]["baseline_grid"]
    for field, prop in grid["properties"].items():
        for value in probes(prop):
            yield pytest.param(field, value, id=f"{field}-{_same(value)}")


def _keep_ordered(grid: dict, field: str, value) -> None:
    """``*_min <= *_max`` is a rule across two fields, which the schema leaves to the
    library: a probe of one bound moves the other out of its way."""
    stem, _, end = field.rpartition("_")
    if end not in ("min", "max") or isinstance(value, bool) or not isinstance(value, int | float):
        return
    other = f"{stem}_{'max' if end == 'min' else 'min'}"
    pick = max if end == "min" else min
    if math.isfinite(value) and other in grid:
        grid[other] = pick(grid[other], value)


@pytest.mark.parametrize(("field", "value"), list(_grid_cases()))
def test_the_schema_and_a_baseline_grid_accept_the_same_values(field, value):
    grid = {**BaselinesConfig.preset("quick").to_dict()["mass"], field: value}
    _keep_ordered(grid, field, value)
    schema = {**_SCHEMA["$defs"]["baseline_grid"], "$defs": _SCHEMA["$defs"]}
    library = _accepts(lambda d: BaselineGrid.from_dict("mass", d), grid)
    assert _schema_accepts(grid, schema) == library, grid


@pytest.mark.parametrize("study", sorted(_STUDIES))
def test_the_schema_defaults_are_the_study_configs_defaults(study):
    cls, _ = _STUDIES[study]
    config = cls().to_dict()
    props = _SEEDS[study]["properties"]
    assert set(props) == set(config)
    defaults = {k: p["default"] for k, p in props.items() if "default" in p}
    assert defaults == {k: config[k] for k in defaults}
    assert all("default" in p or "$ref" in p for p in props.values())
