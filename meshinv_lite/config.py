"""Configuration as dataclasses, one profile per scale.

Every size or schedule the package uses lives here, never as a scattered constant.
Profiles (DESIGN.md section 6):

========  =========  ==========  ==============  ======================================
profile   render px  texture px  deformation px  purpose
========  =========  ==========  ==============  ======================================
quick     64         64          16              tests, CI, first contact (CPU seconds)
lite      128        128         32              the tutorial as taught (CPU minutes)
paper     256        512         32              the paper's scale (GPU)
========  =========  ==========  ==============  ======================================
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class TemplateConfig:
    """UV-sphere template: ``rings`` latitude bands x ``segments`` longitude segments.

    The default 31 x 32 sphere has 30 * 32 + 2 = 962 vertices and 2 * 32 + 2 * 29 * 32 = 1,920 faces.
    """

    rings: int = 31
    segments: int = 32
    radius: float = 1.0


@dataclass(frozen=True)
class RenderConfig:
    """Renderer settings (DIB-R soft silhouette defaults follow kaolin).

    ``sigma_inv``: sharpness of the soft silhouette, ``exp(-d^2 * sigma_inv)`` with d in normalized units.
    ``box_len``: only faces within this normalized distance of a pixel contribute to its soft value.
    """

    image_size: int = 128
    sigma_inv: float = 7000.0
    box_len: float = 0.02


@dataclass(frozen=True)
class Profile:
    """A named scale for the whole pipeline."""

    name: str
    render_size: int
    texture_size: int
    deform_size: int
    template: TemplateConfig = field(default_factory=TemplateConfig)

    @property
    def render(self) -> RenderConfig:
        """Renderer settings at this profile's render size."""
        return RenderConfig(image_size=self.render_size)

    def with_overrides(self, **kwargs: Any) -> "Profile":
        """A copy with some fields replaced (unknown names raise ``TypeError``)."""
        return replace(self, **kwargs)

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", render_size=64, texture_size=64, deform_size=16),
    "lite": Profile("lite", render_size=128, texture_size=128, deform_size=32),
    "paper": Profile("paper", render_size=256, texture_size=512, deform_size=32),
}

#: The procedural categories' names (their records: :data:`meshinv_lite.data.category.CATEGORIES`), here where the
#: command lines and the notebooks' parameter check can read them without importing the data generators.
CATEGORY_NAMES: tuple[str, ...] = ("birds", "cars")


def get_profile(name: str | Profile) -> Profile:
    """Look a profile up by name (``quick``, ``lite``, ``paper``); a ``Profile`` passes through."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None


def available_devices() -> list[str]:
    """Devices this torch build can use here: ``cpu`` and, where present, ``cuda`` / ``cuda:N`` and ``mps``."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        out += ["cuda"] + [f"cuda:{i}" for i in range(n)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(device) -> "torch.device":  # noqa: F821  (torch is imported where it is needed)
    """The ``torch.device`` for ``device`` (a string or a device), refused up front when this machine cannot use it.

    Catches typos (``cdua``) and devices that are absent (``cuda`` on a CPU-only machine or torch build)
    with a message listing what is available, instead of a failure deep inside a notebook.
    """
    import torch

    name = str(device)
    avail = available_devices()
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}; use one of: {', '.join(avail)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {name!r} was asked for, but {why}; use one of: {', '.join(avail)}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here; use one of: {', '.join(avail)}")
    elif dev.type == "mps" and "mps" not in avail:
        raise ValueError(f"device {name!r} is not available here; use one of: {', '.join(avail)}")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported by meshinv-lite; use one of: {', '.join(avail)}")
    return dev


def idle_cores(sample_s: float = 0.25) -> "float | None":
    """How many CPU cores sat idle over the last ``sample_s`` seconds (Linux ``/proc/stat``; ``None`` elsewhere).

    The calling process sleeps while it samples, so it does not count itself as load.
    """
    import os
    import time

    def read():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]  # total (without guest time), idle + iowait

    try:
        total0, idle0 = read()
        time.sleep(sample_s)
        total1, idle1 = read()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (idle1 - idle0) / (total1 - total0)


def default_threads() -> "int | None":
    """The measured default of :func:`set_threads` (``None``: leave torch's setting).

    On a machine with 2 cores or fewer: **all cores when they are idle right now, else 1**.
    Measured on 2 cores: idle, 2 threads fit pseudo-GT 1.5x faster than 1 (0.57 vs 0.84 s/image); with
    anything else running, 2 threads made GAN training 6-16x and small inversion ops 10-100x slower (every
    multi-threaded op waits for a descheduled thread). ``OMP_NUM_THREADS`` in the environment, or a
    machine with more cores, keeps torch's own setting.
    """
    import os

    cores = os.cpu_count() or 1
    if os.environ.get("OMP_NUM_THREADS") or cores > 2:
        return None
    if cores == 1:
        return 1
    idle = idle_cores()
    return cores if idle is not None and idle >= cores - 0.5 else 1


def default_workers() -> int:
    """Worker processes for work that splits into independent pieces (pseudo-GT shards): one per idle core
    when 2 or more are idle, else 0 (work in this process). ``OMP_NUM_THREADS=1`` in the environment
    (a shared machine, see :func:`set_threads`) also means 0."""
    import os

    if os.environ.get("OMP_NUM_THREADS") == "1":
        return 0
    idle = idle_cores()
    return int(idle + 0.5) if idle is not None and idle >= 1.5 else 0


def set_threads(threads: "int | None" = None) -> int:
    """Set this process up for CPU work: torch's threads (returned) and glibc's allocator thresholds.

    ``None`` picks the measured default (:func:`default_threads`): on a machine with 2 cores or fewer,
    both cores when the machine is idle when this is called, one thread when something else is running.
    Pass a number to override, e.g. ``threads=1`` when you will start something else beside this
    (a second notebook, a training run): the default looks only once, at the call.

    The allocator part (:func:`meshinv_lite._allocator.tune_glibc_malloc`, Linux/glibc only) keeps freed
    blocks mapped between optimisation steps; ``MESHINV_NO_MALLOC_TUNING=1`` leaves it alone.
    """
    import torch

    from ._allocator import tune_glibc_malloc

    tune_glibc_malloc()

    if threads is None:
        chosen = default_threads()
        if chosen is not None:
            torch.set_num_threads(chosen)
    else:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1 (or None for the default), got {threads}")
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()
