"""S7's config: the methods it compares and the grid it runs them on."""

from __future__ import annotations

import math
from dataclasses import dataclass

from minibatch_momentum.checks import (
    Rule,
    distinct_integers,
    distinct_names,
    distinct_numbers,
    integer,
    is_int,
    number,
    require,
)
from minibatch_momentum.studies.base import StudyConfig
from minibatch_momentum.studies.large_batch import LargeBatchConfig

METHODS = ("sgd", "shb", "nshb")
METHOD_LABELS = {
    "sgd": "SGD",
    "shb": r"SHB ($d \leftarrow \beta d + g$)",
    "nshb": r"NSHB ($d \leftarrow \beta d + (1-\beta) g$)",
}
MOMENTUM_FORMS = ("shb", "nshb")


# --------------------------------------------------------------------------- config


# The item rules two of the config's list rules build on (made once, not per check).
_METHOD_NAMES = distinct_names(METHODS)
_BATCH_SIZES = distinct_integers(1)


@dataclass(frozen=True)
class SearchNoiseConfig(StudyConfig):
    """Everything that determines the S7 numbers.

    Attributes:
        methods: optimizers, from :data:`METHODS` (``sgd`` is needed by every claim).
        batch_sizes: the digits MLP's batch sizes (at least two, for the slope).
        eff_lrs: effective steps ``eta_eff`` (SHB runs at ``(1 - beta) eta_eff``).
        betas: momentum factors of ``shb`` and ``nshb`` (SGD has none).
        steps: training steps of every digits run (the same for every ``B``, so the
            iterates compared across ``B`` have had the same number of updates).
        measure_every: steps between two noise measurements in the window (four times
            as many before it; each costs a full-batch gradient).
        window: the last share of training whose measurements make a run's level.
        hidden: width of the MLP's hidden layer (S1's model).
        seeds: one run per seed and configuration.
        split_seed: S1's train / validation / test split.
        quad_d, quad_n, quad_kappa: the Gaussian-rows quadratic (geometric spectrum).
        quad_batch_sizes: its batch sizes (each < ``quad_n``).
        quad_eff_lr: its effective step in units of ``1 / L``.
        quad_steps: its steps per run (measured at every step).
        quad_seeds: runs per quadratic configuration.
        slope_tolerance: S7a's band on the SGD slope around the prediction.
        ci_level: level of the bootstrap intervals.
        n_boot: bootstrap resamples.
    """

    methods: tuple[str, ...] = METHODS
    batch_sizes: tuple[int, ...] = (8, 32, 128)
    eff_lrs: tuple[float, ...] = (0.03, 0.1, 0.3)
    betas: tuple[float, ...] = (0.5, 0.9)
    steps: int = 200
    measure_every: int = 10
    window: float = 0.25
    hidden: int = 64
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    split_seed: int = 0
    quad_d: int = 32
    quad_n: int = 256
    quad_kappa: float = 100.0
    quad_batch_sizes: tuple[int, ...] = (1, 4, 16, 64)
    quad_eff_lr: float = 0.25
    quad_steps: int = 200
    quad_seeds: int = 4
    slope_tolerance: float = 0.15
    ci_level: float = 0.95
    n_boot: int = 2000

    NAME = "search_noise"
    RULES = {
        "methods": Rule(
            lambda ms: _METHOD_NAMES.ok(ms) and "sgd" in ms,
            f"distinct names from {list(METHODS)} including 'sgd'",
        ),
        "batch_sizes": Rule(
            lambda bs: _BATCH_SIZES.ok(bs) and len(bs) >= 2,
            "at least two distinct integers >= 1",
        ),
        "eff_lrs": distinct_numbers("> 0"),
        "betas": distinct_numbers("in (0, 1)"),
        "steps": integer(1),
        "measure_every": integer(1),
        "hidden": integer(1),
        "quad_steps": integer(2),
        "window": number("in (0, 1]"),
        "seeds": distinct_integers(0),
        "split_seed": integer(0),
        "quad_d": integer(2),
        "quad_kappa": number(">= 1"),
        "quad_eff_lr": number("> 0"),
        "quad_seeds": integer(1),
        "slope_tolerance": number("> 0"),
        "ci_level": number("in (0, 1)"),
        "n_boot": integer(100),
    }
    # quick: the default profile (180 digits runs of 200 steps and 320 quadratic runs,
    # under 20 s of one core); paper: six batch sizes, four effective steps, four momenta,
    # 10 seeds, 1,000 steps (~8 TFLOP, an estimated 10-15 minutes of one core, not
    # measured).
    PRESETS = {
        "quick": {},
        "paper": dict(
            batch_sizes=(8, 16, 32, 64, 128, 256),
            eff_lrs=(0.01, 0.03, 0.1, 0.3),
            betas=(0.5, 0.8, 0.9, 0.95),
            steps=1000,
            seeds=tuple(range(10)),
            quad_d=64,
            quad_n=1024,
            quad_batch_sizes=(1, 4, 16, 64, 256),
            quad_steps=500,
            quad_seeds=10,
            n_boot=5000,
        ),
    }

    def check(self) -> None:
        require(
            self.measure_every <= self.steps,
            "measure_every",
            f"<= steps = {self.steps}",
            self.measure_every,
        )
        require(
            is_int(self.quad_n) and self.quad_n >= self.quad_d,
            "quad_n",
            f"an integer >= quad_d = {self.quad_d}",
            self.quad_n,
        )
        require(
            _BATCH_SIZES.ok(self.quad_batch_sizes) and max(self.quad_batch_sizes) < self.quad_n,
            "quad_batch_sizes",
            f"a non-empty list of distinct integers in [1, quad_n = {self.quad_n})",
            self.quad_batch_sizes,
        )

    def digits_config(self) -> LargeBatchConfig:
        """S1's config with this system's model width and split (its data and model)."""
        return LargeBatchConfig(model="mlp", hidden=self.hidden, split_seed=self.split_seed)

    def lr(self, method: str, eff_lr: float, beta: float) -> float:
        """The optimizer's own step at effective step ``eff_lr``."""
        return eff_lr * (1.0 - beta) if method == "shb" else eff_lr

    def variants(self) -> list[tuple[str, float]]:
        """``(method, beta)`` pairs run: SGD once (``beta = 0``), each form per beta."""
        out = [("sgd", 0.0)] if "sgd" in self.methods else []
        return out + [
            (m, float(b)) for m in MOMENTUM_FORMS if m in self.methods for b in self.betas
        ]

    def measure_steps(self) -> list[int]:
        """Steps whose noise is measured: every ``measure_every`` inside the window, at a
        quarter of that rate before it (the curve only; each costs a full gradient)."""
        start = math.ceil(self.window_start())
        before = range(0, start, 4 * self.measure_every)
        inside = range(self.steps - self.measure_every, start - 1, -self.measure_every)
        return sorted({*before, *inside})

    def window_start(self) -> float:
        """Measurements at steps >= this count towards a run's level."""
        return (1.0 - self.window) * self.steps
