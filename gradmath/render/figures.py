"""Lecture figures: one matplotlib function per picture, one style, byte-for-byte reproducible.

Every plotting function takes ``ax=`` (a new figure is made when it is ``None``) and returns
the axes, so figures compose into grids. Figures are built on :class:`matplotlib.figure.Figure`
directly, never through ``pyplot``: nothing global is touched (no backend switch, no window,
no figure registry), which keeps the functions safe in servers, tests and process pools.

The look lives in one place, :data:`STYLE`, applied with the :func:`style` context manager
while artists are made and saved (never written into the global ``rcParams``).
:func:`save` writes PDF (vector) and PNG (raster) with fixed metadata, so the same input
gives the same bytes on the same matplotlib version.

Quantities on profile axes are plotted as log10 of the stored natural logs, so depth-10,000
nets whose moments leave float range still plot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gradmath.activations import Activation, activation, activations
from gradmath.errors import GradmathError
from gradmath.render.files import atomic_path, check_path
from gradmath.render.latex import TEXT_WIDTH_IN

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from gradmath.profile import Profile

__all__ = [
    "FORMATS",
    "MIN_FONT_PT",
    "QUANTITY_LABELS",
    "SERIES",
    "STYLE",
    "TEXT_WIDTH_IN",
    "WIDE",
    "activation_derivative",
    "activation_grid",
    "clipping_geometry",
    "depth_profile",
    "depth_profiles",
    "depth_scale",
    "figure_legend",
    "forward_backward",
    "gradient_flow",
    "layer_change",
    "new_axes",
    "new_figure",
    "phase_diagram",
    "save",
    "style",
    "text_sizes",
    "training_curves",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

#: One look per curve of a multi-curve plot: colour, line style and marker all differ, so the
#: curves stay apart in grey print and for colour-blind readers (colour is never the only cue).
SERIES: tuple[dict[str, Any], ...] = (
    {"color": PALETTE[0], "linestyle": "-", "marker": "o"},
    {"color": PALETTE[1], "linestyle": "--", "marker": "s"},
    {"color": PALETTE[2], "linestyle": "-.", "marker": "^"},
    {"color": PALETTE[3], "linestyle": ":", "marker": "D"},
    {"color": PALETTE[4], "linestyle": (0, (5, 1, 1, 1)), "marker": "v"},
    {"color": PALETTE[7], "linestyle": (0, (8, 2)), "marker": "P"},
    {"color": PALETTE[5], "linestyle": (0, (1, 1)), "marker": "X"},
)

#: The smallest font size, in points, that text in a figure may have when printed.
MIN_FONT_PT = 8.0
#: Size of a two-panel figure (the text width).
WIDE = (TEXT_WIDTH_IN, 3.3)

#: The one place the look of every gradmath figure is set.
STYLE: dict[str, Any] = {
    "figure.figsize": (5.5, 3.4),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "font.size": 9.0,
    "axes.titlesize": 9.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "legend.title_fontsize": 8.0,
    "legend.frameon": False,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.0,
    "errorbar.capsize": 1.5,
    "mathtext.fontset": "cm",
    # Type 3 subsets: small, stable files (type 42 makes fontTools log timestamp noise).
    "pdf.fonttype": 3,
    "svg.fonttype": "path",
    "svg.hashsalt": "gradmath",
    "image.cmap": "viridis",
}

#: Fixed metadata per format: no dates or versions that would change the bytes between runs.
_METADATA: dict[str, dict[str, Any]] = {
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": "gradmath", "Creator": "gradmath"},
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": "gradmath"},
}

#: The formats :func:`save` writes.
FORMATS = tuple(_METADATA)

#: Axis labels of the per-layer quantities of a :class:`~gradmath.Profile`.
QUANTITY_LABELS = {
    "q": r"$\log_{10}\,\mathbb{E}[(h^l_i)^2]$",
    "grad_q": r"$\log_{10}\,\mathbb{E}[(\partial\ell/\partial h^l_i)^2]$",
    "wgrad_q": r"$\log_{10}\,\mathbb{E}[(\partial\ell/\partial W^l_{ij})^2]$",
}

_LN10 = math.log(10.0)
#: Legend title of theory-vs-simulation panels.
SIM_LEGEND = "lines: theory; points: simulation ±{n_se:g} SE"


@contextmanager
def style() -> Iterator[None]:
    """Apply :data:`STYLE` (and the palette) for the duration of a ``with`` block."""
    import matplotlib
    from cycler import cycler

    params: Any = {**STYLE, "axes.prop_cycle": cycler(color=list(PALETTE))}
    with matplotlib.rc_context(params):
        yield


def new_figure(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None
) -> tuple[Figure, Any]:
    """A styled, pyplot-free :class:`~matplotlib.figure.Figure` and its array of axes.

    Returns ``(fig, axes)`` with ``axes`` a 2-D NumPy array of shape (nrows, ncols).
    """
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def new_axes(ax: Axes | None = None, *, figsize: tuple[float, float] | None = None) -> Axes:
    """``ax`` itself, or the single axes of a new styled figure when ``ax`` is ``None``."""
    if ax is not None:
        return ax
    _, axes = new_figure(figsize=figsize)
    return axes[0, 0]  # type: ignore[no-any-return, unused-ignore]


def save(
    fig: Figure,
    stem: str | Path,
    *,
    formats: Sequence[str] = ("pdf", "png"),
    dpi: int = 200,
) -> tuple[Path, ...]:
    """Write ``fig`` to ``stem.<fmt>`` for each format; the same figure gives the same bytes.

    PDF and SVG are vector output, PNG raster at ``dpi`` (at least 150). Metadata that would
    change between runs (creation date, software version) is fixed; SVG ids use the fixed
    ``svg.hashsalt`` of :data:`STYLE`.
    """
    if dpi < 150:
        raise GradmathError(f"`dpi` (={dpi!r}) must be at least 150 for lecture-quality PNGs.")
    stem = check_path("stem", stem)
    written = []
    for fmt in formats:
        if fmt not in _METADATA:
            raise GradmathError(f"`formats` contains {fmt!r}; allowed: {', '.join(_METADATA)}.")
        path = stem.with_name(f"{stem.name}.{fmt}")
        # Atomic: an interrupted save leaves the old file (or none), never a truncated one.
        with style(), atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        written.append(path)
    return tuple(written)


def text_sizes(fig: Figure) -> dict[str, float]:
    """Font size in points of every visible piece of text of ``fig`` (keys: ``"i: text"``).

    At the figure's own size; the notes include a figure at its natural size when it fits the
    text width, so these are the printed sizes, which must be at least 8 pt. Call after the
    figure was drawn or saved (tick labels exist only then).
    """
    from matplotlib.text import Text

    sizes = {}
    for i, t in enumerate(fig.findobj(Text)):
        if not (t.get_visible() and t.get_text().strip()):
            continue
        ax = t.axes
        if ax is not None and not ax.get_visible():
            continue
        sizes[f"{i}: {t.get_text()}"] = float(t.get_fontsize())
    return sizes


# --------------------------------------------------------------------------- activations


def activation_derivative(
    act: str | Activation,
    ax: Axes | None = None,
    *,
    z_max: float = 6.0,
    n: int = 1201,
    legend: bool = True,
    compact: bool = False,
) -> Axes:
    """φ(z) (solid) and φ'(z) (dashed) on [−z_max, z_max], with the largest |φ'| on the plot
    marked. ``compact`` (a panel of a grid): the name and the peak value go into a two-line
    title instead of a label inside the axes.

    The peak is read off the curve itself (an odd ``n`` puts z = 0 on the grid, so the
    sigmoid's maximum σ'(0) = 1/4 is hit exactly); it is the γ = sup|φ'| of the chain-rule
    bound |∂L/∂w_1| ≤ |∂L/∂a_L| |a_0| ∏ γ|w_l| (theory.md, "Symbolic facts"). A plateau (ReLU)
    is labelled without a point; a maximum at the edge of the plot is labelled as such.
    """
    act = activation(act)
    if n % 2 == 0:
        raise GradmathError(f"`n` (={n!r}) must be odd so that z = 0 is on the grid.")
    z = np.linspace(-z_max, z_max, n)
    phi, dphi = act(z), act.deriv(z)
    with style():
        ax = new_axes(ax)
        ax.plot(z, phi, color=PALETTE[0], linestyle="-", label=r"$\varphi(z)$")
        ax.plot(z, dphi, color=PALETTE[1], linestyle="--", label=r"$\varphi'(z)$")
        peak = _peak_text(ax, z, dphi, compact=compact)
        ax.axhline(0.0, color="0.5", linewidth=0.6)
        ax.set_xlabel("$z$")
        ax.set_xlim(-z_max, z_max)
        lo, hi = min(phi.min(), dphi.min(), 0.0), max(phi.max(), dphi.max())
        if compact:
            ax.set_title(f"{act.name}\n{peak}")
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        else:
            ax.text(0.03, 0.97, peak, transform=ax.transAxes, va="top", color=PALETTE[1])
            ax.set_title(_act_title(act))
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.3 * (hi - lo))  # headroom for the label
        if legend:
            ax.legend(loc="center right")
    return ax


def _peak_text(ax: Axes, z: np.ndarray, dphi: np.ndarray, *, compact: bool = False) -> str:
    size = np.abs(dphi)
    i = int(np.argmax(size))
    peak = float(size[i])
    ties = int(np.count_nonzero(size >= peak * (1.0 - 1e-12)))
    if ties > 1:
        return f"max $|\\varphi'|$ = {peak:.4g}"
    if i in (0, z.size - 1):
        return f"$|\\varphi'| \\leq$ {peak:.4g}" + ("" if compact else " on the plot")
    ax.plot([z[i]], [dphi[i]], "o", color=PALETTE[1], zorder=3)
    where = "" if compact else f" at z = {float(z[i]):.3g}"
    return f"max $|\\varphi'|$ = {peak:.4g}{where}"


def _act_title(act: Activation) -> str:
    args = ", ".join(f"{k}={v:.4g}" for k, v in act.params.items())
    return f"{act.name}({args})" if args else act.name


def activation_grid(
    names: Sequence[str | Activation] | None = None, *, ncols: int = 3, z_max: float = 5.0
) -> Figure:
    """A grid of :func:`activation_derivative` panels, by default over the whole catalogue."""
    acts = [activation(a) for a in (activations() if names is None else names)]
    if not acts:
        raise GradmathError("`names` is empty; give at least one activation.")
    nrows = -(-len(acts) // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(TEXT_WIDTH_IN, 1.45 * nrows + 0.4))
    with style():
        for ax, act in zip(axes.flat, acts, strict=False):
            activation_derivative(act, ax, z_max=z_max, legend=False, compact=True)
            ax.set_xlabel("")
        for ax in list(axes.flat)[len(acts) :]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


# --------------------------------------------------------------------------- profiles


def _log10(profile: Profile, quantity: str) -> tuple[np.ndarray, np.ndarray | None]:
    if quantity not in QUANTITY_LABELS:
        raise GradmathError(f"`quantity` (={quantity!r}) must be one of {list(QUANTITY_LABELS)}.")
    se = getattr(profile, f"log_{quantity}_se")
    values = getattr(profile, f"log_{quantity}") / _LN10
    return values, None if se is None else se / _LN10


def depth_profile(
    theory: Profile | None = None,
    sim: Profile | None = None,
    *,
    quantity: str = "grad_q",
    ax: Axes | None = None,
    label: str | None = None,
    color: str | None = None,
    n_se: float = 2.0,
    look: Mapping[str, Any] | None = None,
) -> Axes:
    """A per-layer second moment against depth: theory as a line, simulation as points.

    ``quantity`` is ``"q"`` (forward), ``"grad_q"`` (backward δ^l) or ``"wgrad_q"`` (weight
    gradient), plotted as log10. Simulation points carry error bars of ``n_se`` standard
    errors (the profile's ``log_*_se``, the Monte-Carlo standard error of the log). ``look``
    (an entry of :data:`SERIES`: colour, line style, marker) tells this curve from others;
    the legend entry shows the line with the marker.
    """
    if theory is None and sim is None:
        raise GradmathError("Give a `theory` profile, a `sim` profile, or both.")
    with style():
        ax = new_axes(ax)
        look = dict(look or {"linestyle": "-", "marker": "o"})
        if color is not None:
            look["color"] = color
        look.setdefault("color", ax._get_lines.get_next_color())  # type: ignore[attr-defined]
        c, ls, mk = look["color"], look.get("linestyle", "-"), look.get("marker", "o")
        if theory is not None:
            y, _ = _log10(theory, quantity)
            ax.plot(np.arange(1, theory.depth + 1), y, color=c, linestyle=ls)
            xlabel = _site_axis(theory)
        if sim is not None:
            y, se = _log10(sim, quantity)
            layers = np.arange(1, sim.depth + 1)
            xlabel = _site_axis(sim)
            ax.errorbar(layers, y, yerr=None if se is None else n_se * se, fmt=mk, color=c,
                        markersize=3.5, elinewidth=0.8, markerfacecolor="white"
                        if theory is not None else c)  # fmt: skip
        if label is not None:  # one legend entry: the line style and the marker together
            ax.plot([], [], color=c, linestyle=ls if theory is not None else "none",
                    marker=mk if sim is not None else "none", markerfacecolor="white"
                    if theory is not None else c, label=label)  # fmt: skip
        ax.set_xlabel(xlabel)
        ax.set_ylabel(QUANTITY_LABELS[quantity])
    return ax


def _site_axis(p: Profile) -> str:
    # Weight layers only read as layers l = 1 … L; the stream as blocks; anything else by row.
    if all(s.kind == "dense" for s in p.sites):
        return "layer $l$"
    stream = tuple(p.network.sites[i] for i in p.network.stream)
    return "block" if tuple(p.sites) == stream else "site"


def depth_profiles(
    curves: Mapping[str, tuple[Profile | None, Profile | None]],
    *,
    quantity: str = "grad_q",
    ax: Axes | None = None,
    n_se: float = 2.0,
    legend: bool = True,
) -> Axes:
    """Several :func:`depth_profile` curves on one axes: ``{label: (theory, sim)}``.

    Lines are theory, points with ``n_se`` standard-error bars are simulation; one look per
    label (:data:`SERIES`: colour, line style and marker). The legend says which is which.
    """
    with style():
        ax = new_axes(ax)
        for (label, (theory, sim)), look in zip(curves.items(), _cycle(), strict=False):
            depth_profile(theory, sim, quantity=quantity, ax=ax, label=label, look=look,
                          n_se=n_se)  # fmt: skip
        if legend:
            ax.legend(title=SIM_LEGEND.format(n_se=n_se))
    return ax


def forward_backward(
    curves: Mapping[str, tuple[Profile | None, Profile | None]],
    *,
    ncols: int = 2,
    figsize: tuple[float, float] = WIDE,
) -> Figure:
    """Two panels side by side, forward ``q`` and backward ``grad_q`` (:func:`depth_profiles`),
    with one legend below them."""
    fig, axes = new_figure(1, 2, figsize=figsize)
    depth_profiles(curves, quantity="q", ax=axes[0, 0], legend=False)
    depth_profiles(curves, quantity="grad_q", ax=axes[0, 1], legend=False)
    figure_legend(fig, axes[0, 1], title=SIM_LEGEND.format(n_se=2), ncols=ncols)
    return fig


def figure_legend(fig: Figure, ax: Axes, *, title: str | None = None, ncols: int = 3) -> None:
    """One legend for a multi-panel figure, below the panels, from the handles of ``ax``."""
    with style():
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, title=title)


def _cycle() -> Iterator[dict[str, Any]]:
    while True:
        yield from SERIES


# --------------------------------------------------------------------------- mean field


def phase_diagram(pd: Any, ax: Axes | None = None, *, xi_max: float = 1e3) -> Axes:
    """The (σ_w², σ_b²) phase diagram with the critical line χ₁ = 1.

    ``pd`` is a :class:`gradmath.meanfield.PhaseDiagram` (fields ``activation``,
    ``sigma_w2``, ``sigma_b2``, ``chi1`` and ``xi_c`` indexed [i_b, i_w], ``critical_sigma_w2``
    over ``sigma_b2``). Ordered phase χ₁ < 1, chaotic χ₁ > 1 (Poole et al. 2016; Schoenholz
    et al. 2017, fig. 1). The colour is log10 ξ_c (clipped at ``xi_max``; it diverges on the
    line) when the diagram has depth scales, else log10 χ₁ on a diverging map whose centre,
    white, is χ₁ = 1 and whose two halves each span the data on their side (the scale is
    fitted to the data, not symmetric about it).
    """
    sw, sb = np.asarray(pd.sigma_w2, float), np.asarray(pd.sigma_b2, float)
    chi1 = np.asarray(pd.chi1, float)
    xi = None if getattr(pd, "xi_c", None) is None else np.asarray(pd.xi_c, float)
    for name, arr in (("chi1", chi1), ("xi_c", xi)):
        if arr is not None and arr.shape != (sb.size, sw.size):
            raise GradmathError(
                f"PhaseDiagram arrays must be indexed [i_b, i_w] = {(sb.size, sw.size)}; "
                f"got {name} {arr.shape}."
            )
    with np.errstate(divide="ignore", invalid="ignore"):
        if xi is not None:
            color = np.log10(np.clip(np.where(np.isfinite(xi), xi, xi_max), 1e-3, xi_max))
            cmap, label, text_color = "viridis", r"$\log_{10}\,\xi_c$", "white"
        else:
            color = np.log10(chi1)
            cmap, label, text_color = "RdBu_r", r"$\log_{10}\,\chi_1$", "black"
    norm = None if xi is not None else _centred_norm(color)
    with style():
        ax = new_axes(ax)
        mesh = ax.pcolormesh(sw, sb, color, shading="nearest", rasterized=True, cmap=cmap,
                             norm=norm)  # fmt: skip
        ax.figure.colorbar(mesh, ax=ax, label=label)
        crit = np.asarray(pd.critical_sigma_w2, float)
        ok = np.isfinite(crit)
        ax.plot(crit[ok], sb[ok], color=text_color, linewidth=2.0,
                label=r"critical line $\chi_1=1$")  # fmt: skip
        regions = ((chi1 < 1, "ordered\n$\\chi_1<1$"), (chi1 > 1, "chaotic\n$\\chi_1>1$"))
        for region, text in regions:
            ib, iw = np.nonzero(region)
            if ib.size:
                x, y = float(np.median(sw[iw])), float(np.median(sb[ib]))
                ax.text(x, y, text, ha="center", va="center", color=text_color)
        ax.set_xlabel(r"$\sigma_w^2$")
        ax.set_ylabel(r"$\sigma_b^2$")
        ax.set_xlim(sw[0], sw[-1])
        ax.set_ylim(sb[0], sb[-1])
        ax.set_title(f"{_act_title(activation(pd.activation))}: phase diagram")
        ax.grid(False)
        ax.legend(loc="upper left", labelcolor=text_color)
    return ax


def _centred_norm(values: np.ndarray) -> Any:
    """A colour norm with white at 0 whose two halves each span the data on their side."""
    from matplotlib.colors import TwoSlopeNorm

    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if finite.size else -1.0
    hi = float(finite.max()) if finite.size else 1.0
    # A side without data keeps a sliver of range, so that the norm stays well defined.
    span = max(hi - lo, 1e-12)
    return TwoSlopeNorm(0.0, vmin=min(lo, -1e-3 * span), vmax=max(hi, 1e-3 * span))


def depth_scale(
    pd: Any,
    ax: Axes | None = None,
    *,
    sigma_b2: Sequence[float] | None = None,
    trainable_factor: float = 6.0,
) -> Axes:
    """ξ_c against σ_w² for rows of a phase diagram, with each row's critical σ_w² dashed.

    Schoenholz et al. (2017), eq. 9 and §5: ξ_c diverges at χ₁ = 1 and a net trains only when
    its depth is below about ``trainable_factor``·ξ_c (shown on a twin scale in the legend).
    ``sigma_b2`` picks the rows nearest to the given values (default: three rows).
    """
    sw, sb = np.asarray(pd.sigma_w2, float), np.asarray(pd.sigma_b2, float)
    xi, crit = np.asarray(pd.xi_c, float), np.asarray(pd.critical_sigma_w2, float)
    if sigma_b2 is None:
        rows = sorted({0, sb.size // 2, sb.size - 1})
    else:
        rows = [int(np.argmin(np.abs(sb - float(s)))) for s in sigma_b2]
    with style():
        ax = new_axes(ax)
        for i, look in zip(rows, SERIES, strict=False):
            y = np.where(np.isfinite(xi[i]) & (xi[i] > 0), xi[i], np.nan)
            ax.plot(sw, y, color=look["color"], linestyle=look["linestyle"],
                    label=rf"$\sigma_b^2 = {sb[i]:.3g}$")  # fmt: skip
            if np.isfinite(crit[i]):
                ax.axvline(crit[i], color=look["color"], linestyle=look["linestyle"],
                           linewidth=0.8, alpha=0.7)  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlabel(r"$\sigma_w^2$")
        ax.set_ylabel(rf"depth scale $\xi_c$ (trains up to $\approx {trainable_factor:g}\,\xi_c$)")
        ax.set_title(f"{_act_title(activation(pd.activation))}: correlation depth scale")
        ax.legend()
    return ax


# --------------------------------------------------------------------------- remedies


def clipping_geometry(
    g: Sequence[float] = (0.9, 100.0), threshold: float = 1.0, ax: Axes | None = None
) -> Axes:
    """A 2-D gradient ``g`` and its two clipped versions (Pascanu et al. 2013, Algorithm 1).

    Clip by value (each component into [−c, c]) can turn the direction: [0.9, 100] becomes
    [0.9, 1]; clip by norm (g ← c·g/‖g‖ when ‖g‖ > c) keeps it. Both come from
    :mod:`gradmath.clipping`, as do the angles printed in the legend. ``g`` is usually far
    outside the picture, so it is drawn as a ray along its direction; the box is the
    value-clipping region and the circle the norm-clipping ball.
    """
    from gradmath.clipping import clip_by_norm, clip_by_value, direction_change

    g_ = np.asarray(g, dtype=float)
    if g_.shape != (2,):
        raise GradmathError(f"`g` (={g!r}) must be a 2-vector.")
    c = float(threshold)
    clipped = {
        "clip by value": (np.asarray(clip_by_value(g_, c)), SERIES[1]),
        "clip by norm": (np.asarray(clip_by_norm(g_, c)), SERIES[0]),
    }
    with style():
        ax = new_axes(ax, figsize=(4.6, 4.4))
        lim = 1.6 * c
        ax.add_patch(_rectangle((-c, -c), 2 * c, 2 * c))
        t = np.linspace(0.0, 2.0 * math.pi, 361)
        ax.plot(
            c * np.cos(t), c * np.sin(t), color="0.6", linewidth=0.8, label=f"$\\|g\\| = {c:g}$"
        )
        ray = g_ / np.linalg.norm(g_) * lim * 1.2
        ax.plot([0, ray[0]], [0, ray[1]], ":", color=PALETTE[7],
                label=f"direction of $g = ({g_[0]:g}, {g_[1]:g})$")  # fmt: skip
        for text, (vec, look) in clipped.items():
            color, ls = look["color"], look["linestyle"]
            arrow = {"arrowstyle": "-|>", "color": color, "linewidth": 1.8, "linestyle": ls}
            ax.annotate("", (float(vec[0]), float(vec[1])), (0.0, 0.0), arrowprops=arrow)
            turn = math.degrees(direction_change(g_, vec))
            label = f"{text}: $({vec[0]:.3g}, {vec[1]:.3g})$, {turn:.1f}° from $g$"
            ax.plot([], [], color=color, linestyle=ls, label=label)
        ax.set_xlim(-0.3 * c, lim)
        ax.set_ylim(-0.3 * c, lim)
        ax.set_aspect("equal")
        ax.set_xlabel("$g_1$")
        ax.set_ylabel("$g_2$")
        ax.set_title(f"gradient clipping at $c = {c:g}$")
        ax.legend(loc="upper right")
    return ax


def _rectangle(xy: tuple[float, float], w: float, h: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(xy, w, h, facecolor=PALETTE[4], alpha=0.15, edgecolor=PALETTE[4],
                     label="$|g_i| \\leq c$")  # fmt: skip


def training_curves(
    runs: Mapping[str, Any], ax: Axes | None = None, *, metric: str = "loss"
) -> Axes:
    """``metric`` (``"loss"`` or ``"accuracy"``) per epoch for labelled training runs.

    ``runs`` maps a label to a :class:`gradmath.numeric.train.TrainResult` (anything with
    per-epoch ``loss``/``accuracy`` arrays, epoch 0 first, and ``divergence``). A run that
    diverged ends in a cross at the epoch where its loss or gradient became non-finite. The
    loss axis stops at 10× the largest initial loss, so one exploding run does not flatten the
    others: it leaves through the top of the panel, and its cross sits on the edge.
    """
    if metric not in ("loss", "accuracy"):
        raise GradmathError(f"`metric` (={metric!r}) must be 'loss' or 'accuracy'.")
    top = bottom = None
    if metric == "loss":
        losses = [np.asarray(run.loss, dtype=float) for run in runs.values()]
        top = 10.0 * max(float(y[0]) for y in losses)
        bottom = 0.5 * min(float(y[np.isfinite(y) & (y > 0)].min(initial=top)) for y in losses)
    with style():
        ax = new_axes(ax)
        for (label, run), look in zip(runs.items(), _cycle(), strict=False):
            color = look["color"]
            y = np.asarray(getattr(run, metric), dtype=float)
            epochs = np.arange(y.size)
            ok = np.isfinite(y)
            ax.plot(epochs[ok], y[ok], color=color, linestyle=look["linestyle"],
                    marker=look["marker"], markevery=max(1, y.size // 8), markersize=3.5,
                    label=label)  # fmt: skip
            if getattr(run, "divergence", None) is not None:
                last = float(y[ok][-1]) if ok.any() else 0.0
                cross = last if top is None else min(last, top)
                ax.plot([int(ok.sum())], [cross], "x", color=color, markersize=8,
                        markeredgewidth=2, clip_on=False)  # fmt: skip
        if metric == "loss":
            ax.set_yscale("log")
            ax.set_ylim(bottom, top)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training " + metric + (" (× marks divergence)" if metric == "loss" else ""))
        ax.legend()
    return ax


def layer_change(runs: Mapping[str, Any], ax: Axes | None = None) -> Axes:
    """Relative weight change ‖W_T − W_0‖/‖W_0‖ per layer at the end of training (log scale).

    The visible symptom of vanishing gradients: the lower layers of a deep sigmoid net barely
    move while its top layers learn (``runs`` as in :func:`training_curves`; each needs a
    ``weight_change`` array of shape (epochs + 1, L)). Runs that diverged are left out (their
    weights left any meaningful scale), but keep their colour so panels side by side match.
    """
    with style():
        ax = new_axes(ax)
        for (label, run), look in zip(runs.items(), _cycle(), strict=False):
            if getattr(run, "divergence", None) is not None:
                continue
            change = np.asarray(run.weight_change, dtype=float)[-1]
            layers = np.arange(1, change.size + 1)
            ok = np.isfinite(change) & (change > 0)
            ax.plot(layers[ok], change[ok], markersize=3.5, label=label, **look)
        ax.set_yscale("log")
        ax.set_xlabel("layer $l$")
        ax.set_ylabel(r"$\|W^l_T - W^l_0\| / \|W^l_0\|$")
        ax.legend()
    return ax


def gradient_flow(
    theory: Profile | None,
    measured: Profile,
    ax: Axes | None = None,
    *,
    names: Sequence[str] | None = None,
    measured_only: Sequence[int] = (),
    n_se: float = 2.0,
    band: float = 4.0,
) -> Axes:
    """The gradient-flow plot, done right: per-layer weight-gradient norms on a log axis.

    The widely copied ``plot_grad_flow`` draws bars of mean |grad| per parameter with no idea
    of what they should be. Here each layer's expected per-example gradient norm
    √E‖∂ℓ/∂W^l‖²_F is a point with ``n_se`` Monte-Carlo standard errors (``measured``, e.g. a
    ``gradmath.torch.probe`` profile); the mean-field prediction (``theory``) is a line with a
    band of ±``band`` measured standard errors around it: the region where a measurement agrees
    with the theory at |z| < ``band``. Layers in ``measured_only`` (0-based rows the theory
    does not cover) are shaded and their points hollow. ``names`` label the x axis (module
    names); rows without weights (NaN) are left out.
    """
    with style():
        ax = new_axes(ax)
        y = 0.5 * np.asarray(measured.log_wgrad_norm2) / _LN10
        se_raw = measured.log_wgrad_q_se
        se = np.zeros_like(y) if se_raw is None else 0.5 * np.asarray(se_raw) / _LN10
        x = np.arange(1, y.size + 1)
        ok = np.isfinite(y)
        only = np.zeros(y.size, dtype=bool)
        only[list(measured_only)] = True
        for i in np.flatnonzero(only):
            ax.axvspan(x[i] - 0.5, x[i] + 0.5, color="0.9", lw=0, zorder=0)
        if theory is not None:
            t = 0.5 * np.asarray(theory.log_wgrad_norm2) / _LN10
            tok = np.isfinite(t) & ~only
            ax.plot(x[tok], t[tok], "-", color=PALETTE[0], label="theory (mean field)")
            ax.fill_between(x[tok], (t - band * se)[tok], (t + band * se)[tok], color=PALETTE[0],
                            alpha=0.15, lw=0, label=f"theory ± {band:g} SE")  # fmt: skip
        for mask, face in ((ok & ~only, PALETTE[1]), (ok & only, "white")):
            if mask.any():
                ax.errorbar(x[mask], y[mask], yerr=n_se * se[mask], fmt="o", color=PALETTE[1],
                            markerfacecolor=face, markersize=3.5, capsize=1.5, elinewidth=0.8,
                            label="measured" + (" only" if face == "white" else "")
                            + f" ± {n_se:g} SE")  # fmt: skip
        if names is not None:
            ax.set_xticks(x[ok], [names[int(i)] for i in np.flatnonzero(ok)], rotation=90,
                          fontsize=MIN_FONT_PT)  # fmt: skip
        ax.set_xlabel("layer")
        ax.set_ylabel(r"$\log_{10}\,\sqrt{\mathbb{E}\,\|\partial \ell/\partial W^l\|_F^2}$")
        ax.legend()
    return ax
