"""What every seed study shares: its config's base (declared field rules, plain-data
round trip, presets). The records of its claims are the report's
(:mod:`minibatch_momentum.report.records`).

A study's config is a frozen dataclass that subclasses :class:`StudyConfig` and declares

- ``NAME``: the study's name in errors (``"unknown <NAME> config field(s)"``);
- ``RULES``: field -> :class:`~minibatch_momentum.checks.Rule`, checked in order when the
  config is made (list values become tuples first), each failure raising
  ``"<field>: must be <rule>, got <value>"``;
- ``check()`` (optional): the rules that tie fields together, run after ``RULES``;
- ``PRESETS``: preset name -> the fields that differ from the defaults.
"""

from __future__ import annotations

from dataclasses import fields
from typing import ClassVar

from minibatch_momentum.checks import Rule, is_int, require


class StudyConfig:
    """Validation, ``to_dict`` / ``from_dict`` and ``preset`` for a frozen dataclass."""

    NAME: ClassVar[str]
    RULES: ClassVar[dict[str, Rule]] = {}
    PRESETS: ClassVar[dict[str, dict]] = {"quick": {}, "paper": {}}

    def __post_init__(self) -> None:
        for f in fields(self):
            if isinstance(value := getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(value))
        for name, rule in self.RULES.items():
            value = getattr(self, name)
            require(rule.ok(value), name, rule.text, value)
        self.check()

    def check(self) -> None:
        """The rules across fields (none by default)."""

    def to_dict(self) -> dict:
        """Plain data (tuples as lists) that :meth:`from_dict` takes back."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in fields(self)
        }

    @classmethod
    def from_dict(cls, d: dict | None):
        """Build from plain data (YAML / JSON); unknown keys and bad values name the field.
        A list field takes a list; ``seeds`` may also be an integer ``k``, meaning
        ``range(k)``."""
        d = dict(d or {})
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown {cls.NAME} config field(s): {unknown}")
        lists = {f.name for f in fields(cls) if isinstance(f.default, tuple)}
        if "seeds" in lists and is_int(d.get("seeds")):
            require(d["seeds"] >= 1, "seeds", "an integer >= 1 or a list", d["seeds"])
            d["seeds"] = tuple(range(int(d["seeds"])))
        for k in sorted(lists & set(d)):
            require(isinstance(d[k], list | tuple), k, "a list", d[k])
            d[k] = tuple(d[k])
        return cls(**d)

    @classmethod
    def preset(cls, name: str):
        """The config of a preset (``"quick"``: the default profile's; ``"paper"``)."""
        if name not in cls.PRESETS:
            options = " or ".join(repr(k) for k in cls.PRESETS)
            raise ValueError(f"preset: must be {options}, got {name!r}")
        return cls(**cls.PRESETS[name])
