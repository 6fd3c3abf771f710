"""The live loss panel: curves that update while an optimisation runs, in JupyterLab or as a PNG headless."""
from __future__ import annotations

import io
import os
import time
from typing import Optional, Sequence

import torch

from .figures import _to_hwc


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

    Example::

        live = LiveLoss(every=10)
        for step in range(n):
            ...
            live.update(step, total=loss.item(), mask=l_mask.item(), images=[pred, target])
        fig = live.close()
    """

    def __init__(self, every: int = 10, interactive: Optional[bool] = None, title: str = "", log_y: bool = True):
        if interactive is None:
            interactive = in_notebook_frontend() and not os.environ.get("MESHINV_HEADLESS")
        self.every = max(1, int(every))
        self.interactive = interactive
        self.title = title
        self.log_y = log_y
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._images: Optional[list] = None
        self._start = time.perf_counter()
        self._label = self._picture = None
        if interactive:
            from IPython.display import HTML, display

            self._label = display(HTML(f"<b>{title}</b> starting..."), display_id=True)
            self._picture = display(HTML(""), display_id=True)

    def _show(self, fig, text: str) -> None:
        """Put ``fig`` (closed afterwards, so the inline backend does not show it again) and ``text`` in place."""
        import matplotlib.pyplot as plt
        from IPython.display import HTML, Image

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
        plt.close(fig)
        self._picture.update(Image(data=buf.getvalue(), format="png"))
        self._label.update(HTML(text))

    def update(self, step: int, images: Optional[Sequence[torch.Tensor]] = None, **terms: float) -> None:
        """Record loss ``terms`` (floats) at ``step``; redraw every ``every`` steps."""
        for k, v in terms.items():
            self.history.setdefault(k, []).append((int(step), float(v)))
        if images is not None:
            self._images = [im.detach().cpu() for im in images]
        if step % self.every:
            return
        line = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
        if self.interactive:
            self._show(self.figure(), f"<b>{self.title}</b> step {step}: {line}")
        else:
            print(f"[{self.title or 'loss'}] step {step:5d} " + " ".join(f"{k}={v:.4g}" for k, v in terms.items()))

    def figure(self):
        """Loss curves (and the latest images, if any) as a matplotlib Figure."""
        import matplotlib.pyplot as plt

        n_img = len(self._images) if self._images else 0
        fig, axes = plt.subplots(1, 1 + n_img, figsize=(4.5 + 2.2 * n_img, 3), squeeze=False)
        ax = axes[0, 0]
        for k, pts in self.history.items():
            steps, vals = zip(*pts)
            ax.plot(steps, vals, label=k)
        if self.log_y and all(v > 0 for pts in self.history.values() for _, v in pts):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(self.title or "loss")
        if self.history:
            ax.legend(fontsize=7)
        for i in range(n_img):
            img = self._images[i]
            axes[0, i + 1].imshow(_to_hwc(img[0] if img.dim() == 4 else img), cmap="gray", vmin=0, vmax=1)
            axes[0, i + 1].axis("off")
        fig.tight_layout()
        return fig

    def close(self):
        """The final figure, returned (e.g. for :func:`save_figure`); shown once: interactively it replaces
        the live picture in place, headless the inline backend shows it at the end of the cell."""
        fig = self.figure()
        elapsed = time.perf_counter() - self._start
        if self.interactive and self._picture is not None:
            self._show(fig, f"<b>{self.title}</b> done in {elapsed:.1f} s")
        return fig
