"""The figures' one style: sizes, theme, palette, and the atomic PDF + PNG write.

The theme is seaborn's ``set_theme(context="paper", style="ticks", font_scale=0.9)``
written out as the matplotlib settings it makes, so a figure job does not import
seaborn (and scipy.stats under it: over a second of every figure job's start-up).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from cycler import cycler  # noqa: E402

from .io import atomic_path  # noqa: E402

COLUMN_WIDTH = 3.4  # inches: one paper column

_INK = ".15"
_SEABORN_DEEP = [
    "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3",
    "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd",
]  # fmt: skip
_PAPER_FONT = 8.64  # seaborn's paper context (9.6) at font_scale 0.9
_PAPER_SMALL = 7.92
RC = {
    "axes.axisbelow": True,
    "axes.edgecolor": _INK,
    "axes.labelcolor": _INK,
    "axes.labelsize": _PAPER_FONT,
    "axes.linewidth": 1.0,
    "axes.prop_cycle": cycler(color=_SEABORN_DEEP),
    "axes.titlesize": _PAPER_FONT,
    "font.sans-serif": [
        "Arial",
        "DejaVu Sans",
        "Liberation Sans",
        "Bitstream Vera Sans",
        "sans-serif",
    ],  # fmt: skip
    "font.size": _PAPER_FONT,
    "grid.color": ".8",
    "legend.fontsize": _PAPER_SMALL,
    "legend.title_fontsize": _PAPER_FONT,
    "lines.linewidth": 1.2,
    "lines.markersize": 4.8,
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 0.8,
    "text.color": _INK,
    "xtick.color": _INK,
    "xtick.labelsize": _PAPER_SMALL,
    "xtick.major.size": 4.8,
    "xtick.major.width": 1.0,
    "xtick.minor.size": 3.2,
    "xtick.minor.width": 0.8,
    "ytick.color": _INK,
    "ytick.labelsize": _PAPER_SMALL,
    "ytick.major.size": 4.8,
    "ytick.major.width": 1.0,
    "ytick.minor.size": 3.2,
    "ytick.minor.width": 0.8,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "legend.frameon": False,
}


def apply() -> None:
    """Set the theme (every figure function calls this first)."""
    plt.rcParams.update(RC)


def despine(fig) -> None:
    """Hide every axes' top and right spines."""
    for ax in fig.axes:
        ax.spines[["top", "right"]].set_visible(False)


def palette(cmap: str, n: int) -> list:
    """``n`` colours from a matplotlib colormap, its two ends left out (seaborn's way)."""
    return [tuple(c) for c in plt.get_cmap(cmap)(np.linspace(0, 1, n + 2)[1:-1])]


def save(fig, path: str | os.PathLike) -> None:
    """Write ``path`` (PDF) and the PNG beside it, each atomically."""
    path = Path(path).with_suffix(".pdf")
    for target, kw in [(path, {}), (path.with_suffix(".png"), {"dpi": 200})]:
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=target.suffix[1:], **kw)
    plt.close(fig)
