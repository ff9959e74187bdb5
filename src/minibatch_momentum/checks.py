"""Small predicates for validating configs, shared so every config rejects the same
values with the same ``"<field>: must be <rule>, got <value>"`` message."""

from __future__ import annotations

import math

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
