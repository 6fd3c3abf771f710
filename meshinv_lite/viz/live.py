"""The live loss panel: curves that update while an optimisation runs, in JupyterLab or as a PNG headless."""
from __future__ import annotations

import io
import math
import os
import time
from typing import Mapping, Optional, Sequence, Union

import torch

from .figures import _to_hwc

#: Readable panel titles for the loss terms the package's optimisations report (others keep their own name).
TERM_LABELS = {
    "total": "total loss",
    "chamfer": "Chamfer texture, pixels",
    "chamfer_feature": "Chamfer texture, CNN features",
    "mask_chamfer": "Chamfer mask (silhouette)",
    "mask_iou": "1 - soft IoU (silhouette)",
    "mask_l1": "mask L1 (silhouette)",
    "mask": "silhouette",
    "smooth": "smoothness (1 - cos of normals)",
    "crease": "crease (folded face pairs)",
    "latent": "latent prior, mean z\u00b2/2",
    "z_norm": "latent norm |z| / \u221aD",
    "l1": "L1 (pixel-aligned)",
    "l2": "L2 (pixel-aligned)",
    "perceptual": "perceptual (feature L2)",
}

#: A guide line (a value) or band (``(low, high)``) drawn on a term's panel, by its legend label.
Guide = Union[float, tuple]


def in_notebook_frontend() -> bool:
    """True inside a Jupyter kernel (where widgets can display); False in plain Python."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # pragma: no cover - IPython missing
        return False


class LiveLoss:
    """Loss curves per term (and an optional current image) updated during an optimization.

    ``interactive=True`` (JupyterLab) shows a status line and the figure as two display outputs that are
    *updated in place* every ``every`` steps (IPython display handles, no widget): the notebook keeps the
    last picture as an ordinary PNG output, so a saved notebook shows the result without a kernel, and
    :meth:`close` leaves exactly one final figure. ``interactive=False`` (headless runs, e.g. papermill)
    prints one line every ``every`` steps instead and the figure :meth:`close` returns is shown once by
    the inline backend. ``None`` picks interactive when a Jupyter kernel is running and
    ``MESHINV_HEADLESS`` is unset.

    How the curves are drawn:

    * ``per_term=False`` (default): every loss term on one shared axis (log scale with ``log_y`` when all values
      are positive). ``per_term=True``: one small titled panel per term, each on its own linear scale with its
      first and last value noted, so a term that changes by 1 % is as visible as one that falls tenfold; ``total``
      comes first.
    * ``floors``: ``{term: value}`` a term can never go below (e.g. 2 for the two-sided Chamfer texture loss,
      whose every point costs at least ``eps_a = 1`` per side); that term is drawn as ``value - floor`` and its
      panel says so. Without it a loss resting on a floor of 2 looks flat.
    * ``norms``: terms that are not losses (default: ``z_norm``, the latent's ``|z| / sqrt(D)``): never on a loss
      axis, each on its own linear panel. ``guides``: ``{term: {legend label: value or (low, high)}}`` lines and
      bands drawn on a term's panel (e.g. where the prior's samples lie, the latent shell bound).
    * ``weights``: ``{term: weight in the total}``, shown in the panel titles; ``labels``: panel titles by term
      (default :data:`TERM_LABELS`); ``image_titles``: titles of the images passed to :meth:`update` (default for
      two images: the current render and the target).

    Example::

        live = LiveLoss(every=10, per_term=True, floors={"chamfer": 2.0})
        for step in range(n):
            ...
            live.update(step, total=loss.item(), chamfer=l_tex.item(), images=[pred, target])
        fig = live.close()
    """

    def __init__(self, every: int = 10, interactive: Optional[bool] = None, title: str = "", log_y: bool = True, *,
                 per_term: bool = False, floors: Optional[Mapping[str, float]] = None,
                 norms: Sequence[str] = ("z_norm",), guides: Optional[Mapping[str, Mapping[str, Guide]]] = None,
                 weights: Optional[Mapping[str, float]] = None, labels: Optional[Mapping[str, str]] = None,
                 image_titles: Optional[Sequence[str]] = None):
        if interactive is None:
            interactive = in_notebook_frontend() and not os.environ.get("MESHINV_HEADLESS")
        self.every = max(1, int(every))
        self.interactive = interactive
        self.title = title
        self.log_y = log_y
        self.per_term = per_term
        self.floors = dict(floors or {})
        self.norms = tuple(norms)
        self.guides = {k: dict(v) for k, v in (guides or {}).items()}
        self.weights = dict(weights or {})
        self.labels = {**TERM_LABELS, **(labels or {})}
        self.image_titles = list(image_titles) if image_titles is not None else None
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._images: Optional[list] = None
        self._image_step: Optional[int] = None
        self._start = time.perf_counter()
        self._label = self._picture = None
        if interactive:
            from IPython.display import HTML, display

            self._label = display(HTML(f"<b>{title}</b> starting..."), display_id=True)
            self._picture = display(HTML(""), display_id=True)

    @classmethod
    def for_inversion(cls, config, latent_dim: int = 64, **kwargs) -> "LiveLoss":
        """A per-term panel for an inversion run with ``config`` (an
        :class:`~meshinv_lite.inversion.InversionConfig`, or anything with its loss fields): every term titled with
        its weight in the total; the Chamfer texture terms, and the total, drawn above their floor (each matched point
        costs at least ``eps_a``, so a two-sided Chamfer texture loss is never below ``2 eps_a``); the latent norm
        on its own panel with the band where the prior's samples lie (``1 +- 1/sqrt(2 latent_dim)``) and the shell
        bound when ``config.latent_shell`` sets one. ``kwargs`` go to :class:`LiveLoss` (``every``, ``title``, ...)."""
        from ..losses.nearest import EPS_A

        floor = (2 if getattr(config, "two_sided", True) else 1) * EPS_A
        weights = {name: w for name, w in config.texture_losses}
        weights.update({f"mask_{config.mask_loss}": config.w_mask, "smooth": config.w_smooth,
                        "crease": config.w_crease, "latent": config.w_latent})
        floors = {name: floor for name, _ in config.texture_losses if name.startswith("chamfer")}
        floors["total"] = sum(w * floors.get(name, 0.0) for name, w in config.texture_losses)
        spread = (2 * latent_dim) ** -0.5
        guides = {f"prior's samples (1 \u00b1 {spread:.2f})": (1 - spread, 1 + spread)}
        if getattr(config, "latent_shell", None) is not None:
            guides[f"shell bound {config.latent_shell:g}"] = float(config.latent_shell)
        kwargs.setdefault("per_term", True)
        return cls(floors=floors, weights=weights, guides={"z_norm": guides}, **kwargs)

    def _show(self, fig, text: str, dpi: int = 72) -> None:
        """Put ``fig`` (closed afterwards, so the inline backend does not show it again) and ``text`` in place."""
        import matplotlib.pyplot as plt
        from IPython.display import HTML, Image

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self._picture.update(Image(data=buf.getvalue(), format="png"))
        self._label.update(HTML(text))

    def update(self, step: int, images: Optional[Sequence[torch.Tensor]] = None, **terms: float) -> None:
        """Record loss ``terms`` (floats) at ``step``; redraw every ``every`` steps."""
        for k, v in terms.items():
            self.history.setdefault(k, []).append((int(step), float(v)))
        if images is not None:
            self._images = [im.detach().cpu() for im in images]
            self._image_step = int(step)
        if step % self.every:
            return
        line = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
        if self.interactive:
            self._show(self.figure(), f"<b>{self.title}</b> step {step}: {line}")
        else:
            print(f"[{self.title or 'loss'}] step {step:5d} " + " ".join(f"{k}={float(v):.4g}" for k, v in terms.items()))

    # -- drawing ---------------------------------------------------------------------------------------------------

    def _title(self, key: str, floor: bool = False) -> str:
        """The term's label; a second line with its weight in the total and, with ``floor``, the floor taken off."""
        extra = [f"weight {self.weights[key]:g}"] if key in self.weights else []
        if floor and key in self.floors:
            extra.append(f"minus its floor {self.floors[key]:g}")
        return self.labels.get(key, key) + ("\n" + ", ".join(extra) if extra else "")

    def _curve(self, key: str) -> tuple[list, list]:
        steps, vals = zip(*self.history[key])
        floor = self.floors.get(key, 0.0)
        return list(steps), [v - floor for v in vals]

    def _loss_panel(self, ax, keys: Sequence[str], title: str) -> None:
        curves = {k: self._curve(k) for k in keys}
        for k, (steps, vals) in curves.items():
            label = k + (f" - {self.floors[k]:g}" if k in self.floors else "")   # the shared axis keeps the terms' names
            ax.plot(steps, vals, label=label if len(keys) > 1 else None, lw=1.5)
        values = [v for _, vals in curves.values() for v in vals]
        # one shared axis: log scale (terms differ by orders of magnitude); one term per panel: its own linear scale
        log = self.log_y and not self.per_term and values and all(v > 0 and math.isfinite(v) for v in values)
        if log:
            ax.set_yscale("log")
        elif self.per_term:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.yaxis.get_offset_text().set_fontsize(7)
        floored = [k for k in keys if k in self.floors]
        if len(keys) == 1 and floored:
            ylabel = f"loss - floor {self.floors[keys[0]]:g}"
        elif floored:
            ylabel = "loss (- floor where given)"
        else:
            ylabel = "loss"
        ax.set_ylabel(ylabel + (" (log)" if log else ""), fontsize=8)
        xlabel = "step"
        if self.per_term and len(values) > 1 and values[0] != 0 and math.isfinite(values[0]):
            xlabel += f"   ({values[0]:.3g} \u2192 {values[-1]:.3g}, {values[-1] / values[0] - 1:+.0%})"
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="major")
        if len(keys) > 1:
            ax.legend(fontsize=7)

    def _norm_panel(self, ax, key: str) -> None:
        steps, vals = zip(*self.history[key])
        ax.plot(steps, vals, color="k", lw=1.5, label=key)
        lo, hi = min(vals), max(vals)
        for i, (label, guide) in enumerate(self.guides.get(key, {}).items()):
            colour = ("tab:green", "tab:red", "tab:purple", "tab:orange")[i % 4]
            if isinstance(guide, (tuple, list)):
                ax.axhspan(guide[0], guide[1], color=colour, alpha=0.2, label=label)
                lo, hi = min(lo, guide[0]), max(hi, guide[1])
            else:
                ax.axhline(guide, color=colour, ls="--", lw=1.2, label=label)
                lo, hi = min(lo, guide), max(hi, guide)
        pad = 0.08 * max(hi - lo, 1e-3)
        ax.set_ylim(min(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        ax.set_title(self.labels.get(key, key) + "\n(a norm, not a loss)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("value", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if self.guides.get(key):
            ax.legend(fontsize=6.5, loc="best")

    def _image_titles(self, n: int) -> list[str]:
        if self.image_titles is not None:
            return (self.image_titles + [""] * n)[:n]
        if n == 2:
            at = f" (step {self._image_step})" if self._image_step is not None else ""
            return [f"current render{at}", "target"]
        return [f"image {i}" for i in range(n)]

    def figure(self):
        """Loss curves (and the latest images, if any) as a matplotlib Figure."""
        import matplotlib.pyplot as plt

        losses = [k for k in self.history if k not in self.norms]
        if "total" in losses:
            losses.remove("total")
            losses.insert(0, "total")
        norms = [k for k in self.history if k in self.norms]
        n_img = len(self._images) if self._images else 0
        if self.per_term:
            panels = [("loss", [k]) for k in losses]
        else:
            panels = [("loss", losses)] if losses or not norms else []
        panels += [("norm", [k]) for k in norms]
        n = max(1, len(panels)) + n_img
        ncols = n if n <= 4 else math.ceil(n / 2)
        nrows = math.ceil(n / ncols)
        width = 2.9 if self.per_term else (4.5 if len(panels) == 1 else 3.2)
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols if not self.per_term else 2.9 * ncols, 2.5 * nrows + 0.4),
                                 squeeze=False)
        flat = list(axes.flat)
        if not panels:
            flat[0].set_title(self.title or "loss", fontsize=9)
            flat[0].set_xlabel("step", fontsize=8)
        for ax, (kind, keys) in zip(flat, panels):
            if kind == "norm":
                self._norm_panel(ax, keys[0])
            elif self.per_term:
                self._loss_panel(ax, keys, self._title(keys[0], floor=True))
            else:
                self._loss_panel(ax, keys, self.title or "loss")
        first_img = max(1, len(panels))
        for i, t in enumerate(self._image_titles(n_img)):
            img = self._images[i]
            ax = flat[first_img + i]
            ax.imshow(_to_hwc(img[0] if img.dim() == 4 else img), cmap="gray", vmin=0, vmax=1)
            ax.set_title(t, fontsize=9)
            ax.axis("off")
        for ax in flat[first_img + n_img:]:
            ax.axis("off")
        if self.title and (self.per_term or len(panels) > 1):
            fig.suptitle(self.title, fontsize=11)
        fig.tight_layout()
        return fig

    def close(self):
        """The final figure, returned (e.g. for :func:`save_figure`); shown once: interactively it replaces
        the live picture in place, headless the inline backend shows it at the end of the cell."""
        fig = self.figure()
        elapsed = time.perf_counter() - self._start
        if self.interactive and self._picture is not None:
            self._show(fig, f"<b>{self.title}</b> done in {elapsed:.1f} s", dpi=100)
        return fig
