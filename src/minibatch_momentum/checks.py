"""Small predicates for validating configs, shared so every config rejects the same
values with the same ``"<field>: must be <rule>, got <value>"`` message."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


def require(ok: bool, name: str, rule: str, value) -> None:
    """Raise ``ValueError`` naming the field ``name`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name}: must be {rule}, got {value!r}")


def is_int(x) -> bool:
    """An integer (numpy's included), not a bool."""
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def is_real(x) -> bool:
    """A real number (numpy's included), not a bool."""
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def finite(x) -> bool:
    """A real number that is neither infinite nor NaN."""
    return is_real(x) and math.isfinite(float(x))


# The cross-field checks below run twice with the same code: once over the whole config at
# workflow start (config.py), once in the job that uses the value (sweep.Grid, the CLI), so
# a bad value is refused before any compute and a hand-written spec gets the same message.

DEVICE_RULE = "'auto', 'cpu', 'cuda' or 'cuda:N'"


def is_device(name) -> bool:
    """A torch device name the engine accepts: auto, cpu, cuda or cuda:N."""
    if not isinstance(name, str):
        return False
    if name in ("auto", "cpu", "cuda"):
        return True
    head, _, index = name.partition(":")
    return head == "cuda" and index.isdigit()


def check_device(name, field: str = "device") -> None:
    require(is_device(name), field, DEVICE_RULE, name)


def check_grid(grid, prefix: str = "grid", counts: bool = True) -> None:
    """An ``(eta, 1 - beta)`` log grid: ``0 < eta_min <= eta_max`` and
    ``0 < one_minus_beta_min <= one_minus_beta_max <= 1`` (fields absent from ``grid`` are
    skipped, so a partial grid with defaults elsewhere is checked as far as it goes), and
    with ``counts`` the ``num_eta`` and ``num_beta`` integers ``>= 1``."""
    for lo, hi, top in (
        ("eta_min", "eta_max", None),
        ("one_minus_beta_min", "one_minus_beta_max", 1),
    ):
        for key in (lo, hi):
            if key in grid:
                value = grid[key]
                ok = finite(value) and value > 0 and (top is None or value <= top)
                rule = "a number > 0" if top is None else "a number in (0, 1]"
                require(ok, f"{prefix}.{key}", rule, value)
        if lo in grid and hi in grid:
            require(grid[lo] <= grid[hi], f"{prefix}.{lo}", f"<= {hi} ({grid[hi]!r})", grid[lo])
    if counts:
        for key in ("num_eta", "num_beta"):
            if key in grid:
                value = grid[key]
                require(is_int(value) and value >= 1, f"{prefix}.{key}", "an integer >= 1", value)


# --------------------------------------------------------------------------- declared rules
# A config declares one Rule per field (its test and the words its error gives), so the
# rule is written once and the message cannot drift from the test.


class Rule(NamedTuple):
    """A constraint on one value: ``ok(value)`` and ``text``, the ``<rule>`` of the error."""

    ok: Callable[[Any], bool]
    text: str


_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_BOUND = re.compile(r"(>=|>|<=|<) (\S+)")
_RANGE = re.compile(r"in ([\[(])(\S+), (\S+)([\])])")


def _interval(text: str) -> Callable[[float], bool]:
    """The test that ``text`` (``"> 0"``, ``">= 1"``, ``"in (0, 1]"``, ...) states."""
    if m := _BOUND.fullmatch(text):
        op, bound = _OPS[m[1]], float(m[2])
        return lambda v: op(v, bound)
    if m := _RANGE.fullmatch(text):
        lo, hi = float(m[2]), float(m[3])
        above = operator.gt if m[1] == "(" else operator.ge
        below = operator.lt if m[4] == ")" else operator.le
        return lambda v: above(v, lo) and below(v, hi)
    raise ValueError(f"not an interval: {text!r}")


def number(text: str) -> Rule:
    """A finite real number in the interval ``text`` states, e.g. ``number("in [0, 1)")``."""
    inside = _interval(text)
    return Rule(lambda x: finite(x) and inside(float(x)), text)


def integer(least: int) -> Rule:
    """An integer ``>= least``."""
    return Rule(lambda x: is_int(x) and x >= least, f"an integer >= {least}")


def one_of(options) -> Rule:
    """One of ``options``."""
    options = tuple(options)
    return Rule(lambda x: x in options, f"one of {list(options)}")


def _distinct(values, ok) -> bool:
    values = tuple(values) if isinstance(values, list | tuple) else ()
    return len(values) >= 1 and all(ok(v) for v in values) and len(set(values)) == len(values)


def distinct_integers(least: int) -> Rule:
    """A non-empty list of distinct integers ``>= least``."""
    item = integer(least).ok
    return Rule(lambda xs: _distinct(xs, item), f"a non-empty list of distinct integers >= {least}")


def distinct_numbers(text: str) -> Rule:
    """A non-empty list of distinct numbers in the interval ``text`` states."""
    item = number(text).ok
    return Rule(lambda xs: _distinct(xs, item), f"a non-empty list of distinct numbers {text}")


def distinct_names(options) -> Rule:
    """A non-empty list of distinct names from ``options``."""
    options = tuple(options)
    return Rule(
        lambda xs: _distinct(xs, lambda x: x in options),
        f"a non-empty list of distinct names from {list(options)}",
    )
