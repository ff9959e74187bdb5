"""The figures' one style: sizes, theme, palette, and the atomic PDF + PNG write.

Figures are drawn at the width they print at (``HALF``: two to a line of the paper's
6.5-inch text; ``FULL``: the whole line) and saved at exactly that size (constrained
layout, no tight bounding box), so the paper includes them unscaled and a font's size
in the PDF is its printed size. Every text is ``FONT`` points: mathtext draws sub- and
superscripts at 0.7 of their text, so ``B^*_{SGD}`` or a tick's ``10^{3}`` still prints
at ``MIN_PT`` or more (journals' floor for figure text).

The theme is seaborn's ``set_theme(style="ticks")`` written out as the matplotlib
settings it makes, so a figure job does not import seaborn (and scipy.stats under it:
over a second of every figure job's start-up).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from cycler import cycler  # noqa: E402

from minibatch_momentum.io import atomic_path  # noqa: E402

TEXT_WIDTH = 6.5  # inches: the paper's line (10pt article, 1-inch margins)
FULL = TEXT_WIDTH
HALF = 3.15  # two side by side, with a gap
MIN_PT = 6.0
FONT = 8.6  # MIN_PT / 0.7, mathtext's script scale, rounded up

_INK = ".15"
_SEABORN_DEEP = [
    "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3",
    "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd",
]  # fmt: skip
RC = {
    "axes.axisbelow": True,
    "axes.edgecolor": _INK,
    "axes.labelcolor": _INK,
    "axes.labelsize": FONT,
    "axes.linewidth": 1.0,
    "axes.prop_cycle": cycler(color=_SEABORN_DEEP),
    "axes.titlesize": FONT,
    "font.sans-serif": [
        "Arial",
        "DejaVu Sans",
        "Liberation Sans",
        "Bitstream Vera Sans",
        "sans-serif",
    ],  # fmt: skip
    "font.size": FONT,
    "grid.color": ".8",
    "legend.fontsize": FONT,
    "legend.title_fontsize": FONT,
    "lines.linewidth": 1.2,
    "lines.markersize": 4.8,
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 0.8,
    "text.color": _INK,
    "xtick.color": _INK,
    "xtick.labelsize": FONT,
    "xtick.major.size": 4.8,
    "xtick.major.width": 1.0,
    "xtick.minor.size": 3.2,
    "xtick.minor.width": 0.8,
    "ytick.color": _INK,
    "ytick.labelsize": FONT,
    "ytick.major.size": 4.8,
    "ytick.major.width": 1.0,
    "ytick.minor.size": 3.2,
    "ytick.minor.width": 0.8,
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "figure.constrained_layout.h_pad": 0.02,
    "figure.constrained_layout.w_pad": 0.02,
    "legend.frameon": False,
    "legend.borderaxespad": 0.3,
    "legend.borderpad": 0.2,
    "legend.columnspacing": 1.0,
    "legend.handlelength": 1.6,
    "legend.handletextpad": 0.4,
    "legend.labelspacing": 0.25,
}


def apply() -> None:
    """Set the theme (every figure function calls this first)."""
    plt.rcParams.update(RC)


def despine(fig) -> None:
    """Hide every axes' top and right spines."""
    for ax in fig.axes:
        ax.spines[["top", "right"]].set_visible(False)


def legend_above(fig, ax=None, ncol: int = 3, **kw):
    """The legend of ``ax`` (default: the first axes) above every axes, in ``ncol``
    columns: at ``FONT`` points a legend inside a half-width axes covers the data."""
    handles, labels = (ax or fig.axes[0]).get_legend_handles_labels()
    return fig.legend(handles, labels, loc="outside upper center", ncol=ncol, **kw)


def points(ax, x, y, yerr, **kw):
    """Measured points with their error bars, unjoined, in the figures' one marker style
    (keywords override it: ``color``, ``marker``, ``label``, ...)."""
    return ax.errorbar(
        x, y, yerr=yerr, **{"ms": 3.5, "lw": 0, "elinewidth": 1.0, "capsize": 1.5, **kw}
    )


def breakpoints(ax, meta, y_text=0.97):
    """The batch sizes ``B*_SGD`` and ``B_sat`` of ``meta`` as labelled dashed lines."""
    for key, label in [("B_sgd", r"$B^*_{\rm SGD}$"), ("B_sat", r"$B_{\rm sat}$")]:
        ax.axvline(meta[key], color="0.6", ls="--", lw=0.8, zorder=0)
        ax.text(
            meta[key],
            y_text,
            label,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            color="0.35",
            bbox={"fc": "white", "ec": "none", "pad": 0.5},
        )


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
