"""The workflow's config: the schema's defaults, one-line errors, and the checks that
span several keys, run once before any job.

The Snakefile and ``mbm plan`` both call :func:`prepare`, so a config means the same
thing to either and a bad one is refused by either with the same single line, naming the
key as the user wrote it (``sweep.grid.eta_max: must be a number, got 'big'``), never a
dump of the schema or of the config. Torch-free: the Snakefile imports it.

Order: the JSON Schema (``workflow/config/schema.yaml``) fills every default it declares
(``default:``, applied while validating, as ``snakemake.utils.validate`` does) and checks
types, enumerations and ranges; then :func:`check_config` checks what JSON Schema cannot
say: ordered grid ranges, batch sizes against a problem's rows, each problem's fields
(:func:`~minibatch_momentum.problems.families.check_problem_spec`, the problem job's own
checks),
samplers against the problem's form. The grid and device predicates are those of
:mod:`~minibatch_momentum.checks`, which the sweep job applies again to its spec.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from minibatch_momentum import checks
from minibatch_momentum.problems.families import check_problem_spec
from minibatch_momentum.sampling.samplers import (
    COORDINATE_SAMPLERS,
    DISTINCT_ROW_SAMPLERS,
    PROJECTION_SAMPLERS,
    UNIFORM_SAMPLERS,
)

# The repository's schema (src/minibatch_momentum/config.py -> the checkout's root).
SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "config" / "schema.yaml"



class ConfigError(ValueError):
    """A config the workflow cannot run; the message is one line naming the key."""


def load_config(path: str | os.PathLike, schema: str | os.PathLike = SCHEMA) -> dict:
    """Read a YAML config and :func:`prepare` it (defaults filled, everything checked)."""
    import yaml

    try:
        with open(path) as fh:
            config = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--configfile: no such file: {os.fspath(path)!r}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{os.fspath(path)}: not valid YAML: {detail}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{os.fspath(path)}: must be a YAML mapping of sections")
    return prepare(config, schema)


def prepare(config: dict, schema: str | os.PathLike = SCHEMA, root: str = ".") -> dict:
    """Fill the schema's defaults into ``config`` (in place), validate it against the
    schema and :func:`check_config`; returns ``config``. ``root``: where relative
    problem file paths are taken from (the workflow's working directory).

    Raises :class:`ConfigError` with a one-line message.
    """
    apply_schema(config, schema)
    try:
        check_config(config, root)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config


# --------------------------------------------------------------------------- the schema


def _load_schema(path) -> dict:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def schema_validator(schema: dict):
    """Draft 2020-12 validator that fills ``default`` values as it descends (the
    jsonschema FAQ recipe, as ``snakemake.utils.validate`` uses; defaults are copied, so
    no two configs share a mutable default).

    ``integer`` and ``number`` mean what the library's own checks mean
    (:func:`~minibatch_momentum.checks.is_int`, :func:`~minibatch_momentum.checks.finite`):
    JSON Schema alone takes ``1.0`` for an integer and ``.inf`` for a number, which the
    jobs then refuse. ``tests/test_schema.py`` holds the two to the same values.
    """
    from jsonschema import Draft202012Validator, validators

    properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from properties(validator, props, instance, schema)

    types = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda _, x: checks.is_int(x),
            "number": lambda _, x: checks.finite(x),
        }
    )
    return validators.extend(
        Draft202012Validator, {"properties": set_defaults}, type_checker=types
    )(schema)


def apply_schema(config: dict, schema: str | os.PathLike = SCHEMA) -> None:
    """Fill defaults and validate; :class:`ConfigError` naming the first bad key."""
    from jsonschema.exceptions import relevance

    validator = schema_validator(_load_schema(schema))
    errors = sorted(validator.iter_errors(config), key=relevance)
    if errors:
        # relevance sorts the best match last
        raise ConfigError(describe(errors[-1]))


def _where(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_BOUNDS = {
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
}
_TYPES = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}


def describe(error) -> str:
    """One line for a jsonschema ``ValidationError``: the key path, the bad value, and
    what is allowed (allowed keys, values or range)."""
    where = _where(error.absolute_path)
    here = f"{where}: " if where else ""
    kind, rule, value, schema = error.validator, error.validator_value, error.instance, error.schema
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed)
        key = f"{where}.{extra[0]}" if where else str(extra[0])
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "required":
        missing = [k for k in rule if k not in value]
        return f"{here}missing key {missing[0]!r}"
    if kind in ("enum", "const"):
        allowed = rule if kind == "enum" else [rule]
        return f"{here}{_short(value)} is not allowed; allowed: {', '.join(map(str, allowed))}"
    if kind == "type":
        types = [rule] if isinstance(rule, str) else rule
        return f"{here}must be {' or '.join(_TYPES.get(t, t) for t in types)}, got {_short(value)}"
    if kind in _BOUNDS:
        return f"{here}must be {_BOUNDS[kind]} {rule:g}, got {_short(value)}"
    if kind in ("minItems", "maxItems"):
        word = "at least" if kind == "minItems" else "at most"
        return f"{here}must have {word} {rule} entr{'y' if rule == 1 else 'ies'}, got {len(value)}"
    if kind == "minProperties":
        return f"{here}must have at least {rule} entr{'y' if rule == 1 else 'ies'}"
    if kind == "uniqueItems":
        return f"{here}entries must be distinct, got {_short(value)}"
    if "propertyNames" in error.relative_schema_path:
        return f"{here}name {_short(value)} must consist of letters, digits and _"
    if kind == "pattern":
        what = schema.get("description") or f"match {rule}"
        return f"{here}{_short(value)} is not allowed; {what}"
    if kind in ("oneOf", "anyOf", "not") and schema.get("description"):
        return f"{here}{schema['description']}"
    if error.context:  # a combinator: the best match among its branches
        from jsonschema.exceptions import best_match

        return describe(best_match(error.context))
    return f"{here}{_short(value)} is not allowed ({kind})"


# ------------------------------------------------------------------- cross-field checks


def studies(config: dict) -> dict:
    """``{problem: study}``: the config's ``studies`` or, without one, every problem
    with the sweep's defaults."""
    return config.get("studies") or {p: {} for p in config["problems"]}


def samplers_key(config: dict, problem: str) -> tuple[list, str]:
    """The samplers a problem is swept with and the key they come from, as written."""
    study = studies(config)[problem]
    if "samplers" in study:
        return study["samplers"], f"studies.{problem}.samplers"
    return config["sweep"]["samplers"], "sweep.samplers"


def study_value(config: dict, problem: str, key: str) -> tuple:
    """A study's value for a ``sweep`` key (its own, else the sweep's) and its key path."""
    study = studies(config)[problem]
    if key in study:
        return study[key], f"studies.{problem}.{key}"
    return config["sweep"][key], f"sweep.{key}"


def study_methods(config: dict, problem: str) -> list[str]:
    """The methods a problem is swept with: its study's ``methods``, else the sweep's."""
    return studies(config)[problem].get("methods", config["sweep"]["methods"])


def method_batches(config: dict, problem: str, method: str) -> list[int]:
    """The batch sizes ``method`` is swept at for ``problem``: its study's (else the
    sweep's), up to the study's or the sweep's ``max_batch`` for the method."""
    cap = {**config["sweep"].get("max_batch", {}), **studies(config)[problem].get("max_batch", {})}
    return [b for b in study_value(config, problem, "batch_sizes")[0] if b <= cap.get(method, b)]


def all_pairs(config: dict) -> list[tuple[str, str]]:
    """Every swept ``(problem, sampler)`` pair, in order."""
    return [(p, s) for p in studies(config) for s in samplers_key(config, p)[0]]


def pairs(config: dict) -> list[tuple[str, str]]:
    """The pairs with per-pair claims, in order (the first is the headline): all but
    those of studies with ``role: scan``, which only feed claim C7."""
    roles = {p: st.get("role", "pair") for p, st in studies(config).items()}
    return [(p, s) for p, s in all_pairs(config) if roles[p] != "scan"]


def problem_rows(spec: dict, root: str = ".") -> int | None:
    """Rows a row sampler draws from (``n``), without generating the problem; ``None``
    when unknown (a ``matrix`` file that is missing or unreadable: its job says why)."""
    family = spec.get("family")
    if family in ("gaussian", "heavy_tailed"):
        return spec.get("n")
    if family == "digits_kernel":
        return spec.get("n_samples")
    if family == "matrix":
        shape = matrix_shape(os.path.join(root, spec.get("path", "")))
        return None if shape is None else shape[0]
    return None


def matrix_shape(path: str) -> tuple[int, int] | None:
    """Shape of a ``.npy``, ``.npz`` (array ``A``) or ``.mtx`` matrix from its header
    only; ``None`` if it cannot be read (the problem job reports why)."""
    import numpy as np

    try:
        suffix = Path(path).suffix.lower()
        if suffix == ".npy":
            return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)[:2]
        if suffix == ".npz":
            import zipfile

            with zipfile.ZipFile(path) as z, z.open("A.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                return tuple(read(fh)[0])[:2]
        if suffix == ".mtx":
            import scipy.io

            rows, cols, *_ = scipy.io.mminfo(path)
            return rows, cols
    except Exception:  # noqa: BLE001 - unreadable here means: let the job say why
        return None
    return None


def check_config(config: dict, root: str = ".") -> None:
    """The checks JSON Schema cannot express, on a config with its defaults filled;
    ``ValueError`` naming the key (see the module docstring)."""
    checks.check_device(config.get("device", "auto"))
    for p, spec in config["problems"].items():
        try:
            check_problem_spec(spec)
        except ValueError as exc:
            raise ValueError(_problem_message(p, spec, str(exc))) from None
    for p in studies(config):
        if p not in config["problems"]:
            raise ValueError(f"studies.{p}: no problem of that name in `problems`")
    checks.check_grid(config["sweep"]["grid"], "sweep.grid")
    for p, study in studies(config).items():
        if "grid" in study:
            checks.check_grid(study["grid"], f"studies.{p}.grid")
    checks.check_grid(config["theory"]["heatmap"], "theory.heatmap")
    for name, grid in (config.get("seeds") or {}).get("baselines", {}).items():
        if isinstance(grid, dict):
            checks.check_grid(grid, f"seeds.baselines.{name}")
    rows = {p: problem_rows(spec, root) for p, spec in config["problems"].items()}
    if not pairs(config):
        raise ValueError("studies: every study has role scan; the first pair must be a pair")
    for p, s in all_pairs(config):
        _check_pair(config, p, s, rows[p])
    _check_kappa_scan(config)
    _check_seed_batches(config, rows)


def _problem_message(name: str, spec: dict, msg: str) -> str:
    field = msg.split(":")[0].split(" ")[0]
    if field in spec or field in ("kappa", "n", "alpha"):
        return f"problems.{name}.{msg}"
    return f"problems.{name}: {msg}"


def _check_pair(config: dict, p: str, sampler: str, n: int | None) -> None:
    kind = config["problems"][p].get("form", "rows")
    _, skey = samplers_key(config, p)
    need = "psd" if sampler in COORDINATE_SAMPLERS else "rows"
    if need != kind:
        raise ValueError(
            f"{skey}: sampler {sampler!r} needs a problem with form {need}, {p!r} has form {kind!r}"
        )
    if sampler not in DISTINCT_ROW_SAMPLERS or n is None:
        return
    sizes, bkey = study_value(config, p, "batch_sizes")
    t1 = config["theory"]["t1"]
    checked = [(b, bkey) for b in sizes]
    t1_on = t1["methods"] and studies(config)[p].get("t1", True)
    if t1_on and sampler not in PROJECTION_SAMPLERS:
        checked.append((t1["batch_size"], "theory.t1.batch_size"))
    if (p, sampler) == pairs(config)[0]:
        heat = config["theory"]["heatmap"]["batch_sizes"]
        checked += [(b, "theory.heatmap.batch_sizes") for b in heat]
    for b, key in checked:
        if b > n:
            raise ValueError(
                f"{key}: batch size {b} exceeds the {n} rows of problem {p!r}, which "
                f"{skey} samples without replacement ({sampler}); use batch sizes <= {n}"
            )


def _check_kappa_scan(config: dict) -> None:
    """Claim C7's swept problems: studies with sgd and hb."""
    swept = studies(config)
    for p in config.get("kappa_scan", {}).get("problems", []):
        if p not in swept:
            raise ValueError(f"kappa_scan.problems: {p!r} is not a study (see `studies`)")
        if "methods" in swept[p]:
            methods, key = swept[p]["methods"], f"studies.{p}.methods"
        else:
            methods, key = config["sweep"]["methods"], "sweep.methods"
        if not {"sgd", "hb"} <= set(methods):
            raise ValueError(f"{key}: kappa_scan.problems needs {p!r} swept with sgd and hb")


def seed_pair(config: dict) -> tuple[str, str]:
    """The pair S3 and S6 run on: ``seeds.problem`` (default the headline's) with its
    study's first sampler."""
    p = (config.get("seeds") or {}).get("problem") or pairs(config)[0][0]
    if p not in studies(config):
        raise ValueError(f"seeds.problem: {p!r} is not a study (see `studies`)")
    return p, samplers_key(config, p)[0][0]


def _check_seed_batches(config: dict, rows: dict) -> None:
    """S6's baseline shards run on the seed systems' pair with its sampler."""
    seeds = config.get("seeds") or {}
    if "baselines" not in seeds.get("systems", []):
        return
    p, sampler = seed_pair(config)
    n = rows[p]
    if sampler not in DISTINCT_ROW_SAMPLERS or n is None:
        return
    for name, grid in seeds["baselines"].items():
        if isinstance(grid, dict):
            for b in grid.get("batch_sizes", []):
                if b > n:
                    raise ValueError(
                        f"seeds.baselines.{name}.batch_sizes: batch size {b} exceeds the {n} "
                        f"rows of problem {p!r} ({sampler}, without replacement)"
                    )


def noise_model(config: dict, problem: str, sampler: str) -> str:
    """The exact theory a pair gets: the Gaussian closed form where it is exact (Gaussian
    rows, uniform mini-batches), else the moment closure with the problem's own fourth
    moments (:mod:`~minibatch_momentum.theory.closure`)."""
    spec = config["problems"][problem]
    gaussian = spec["family"] == "gaussian" and spec.get("form", "rows") == "rows"
    return "gaussian" if gaussian and sampler in UNIFORM_SAMPLERS else "moments"
