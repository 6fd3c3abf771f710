"""The authors' generator architecture (ConvMesh, which MeshInversion uses unchanged), so their weights run here.

Facts read from dariopavllo/convmesh @ a79c685 (``models/gan.py``, ``rendering/utils.py``; MeshInversion's
``lib/models/gan.py`` has the same layers and state-dict names): a class embedding concatenated with ``z`` feeds a
plain linear layer to an 8 x 8 grid of 512 channels (8 x 4 when symmetric) and *every* conditional batch norm;
residual blocks (two spectral-norm 3x3 convolutions, each followed by a conditional batch norm and a leaky ReLU, plus
a 1x1 spectral-norm shortcut where the width changes) with nearest up-sampling between them take it to the texture
size; a mesh branch (one more block and a 5x5 convolution, no activation) leaves at 32 x 32. Convolutions pad along
``u`` by replication (symmetric generators) or circularly, with zeros along ``v``. A symmetric generator makes the
middle half of each map and mirrors it to both sides; the mesh map's first and last rows are averaged (poles).

Differences from :class:`~meshinv_lite.gan.Generator` that matter to a user: the texture comes out at 512 px, the
"deformation" map holds coefficients along each vertex's normal, tangent and bitangent of the authors' own template
(:func:`~meshinv_lite.render.convmesh_template`, returned by :meth:`ConvMeshGenerator.template`), and class and colour
conditions are one flattened ``class_id`` (``shape * color_classes + color``) so that inversion's class search works
unchanged. Inference uses the authors' EMA weights (``generator_running_avg``) in eval mode: the spectral norm then
divides by ``u . W v`` with the stored ``u`` and ``v``, which are EMA averages and not unit vectors; they are used as
they are.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .._checks import check_nonempty_batch, check_shape

#: The authors' hard-coded widths (fc grid, blk1-2, blk3*, blk4-5, blk6 and mesh branch).
_WIDTHS = (512, 256, 128, 64)
_NORMS = ("syncbatch", "batch")


@dataclass(frozen=True)
class ConvMeshConfig:
    """The authors' generator settings (defaults: MeshInversion's and ConvMesh's CUB class-conditional model).

    ``shape_classes``: rows of ``emb_class`` (CUB 200; 0 = unconditional); ``color_classes``: rows of ``emb_color``
    (PASCAL3D+ class + colour models; 0 = none). ``rings``: the template (16 for CUB, 31 for PASCAL3D+).
    ``width_div`` divides every channel count: 1 is the authors' network; the test fixture is a width-16 instance of
    the same architecture (``tests/fixtures/authors``). ``norm``: the authors' ``--norm_g`` (``syncbatch`` and
    ``batch`` are the same layer at inference).
    """

    texture_size: int = 512
    latent_dim: int = 64
    shape_classes: int = 200
    color_classes: int = 0
    rings: int = 16
    symmetric: bool = True
    width_div: int = 1
    norm: str = "syncbatch"
    arch: str = "convmesh"

    def __post_init__(self) -> None:
        if self.texture_size not in (128, 256, 512, 1024):
            raise ValueError(f"ConvMeshConfig.texture_size must be 128, 256, 512 or 1024, got {self.texture_size}")
        if self.norm not in _NORMS:
            raise ValueError(f"ConvMeshConfig.norm {self.norm!r} is not supported (only {_NORMS}: the released models)")
        if self.width_div < 1 or any(w % self.width_div for w in _WIDTHS):
            raise ValueError(f"ConvMeshConfig.width_div must divide 64, got {self.width_div}")
        if self.color_classes and not self.shape_classes:
            raise ValueError("a colour condition needs a class condition (shape_classes > 0)")
        if self.arch != "convmesh":
            raise ValueError(f"ConvMeshConfig.arch is 'convmesh', got {self.arch!r}")

    @property
    def num_classes(self) -> int:
        """Values of the flattened ``class_id``: ``shape_classes * color_classes`` (1 when unconditional)."""
        return max(self.shape_classes, 1) * max(self.color_classes, 1)

    @property
    def deform_size(self) -> int:
        """The mesh map's side: 32 in the architecture."""
        return 32

    @property
    def condition_dim(self) -> int:
        """Width of the vector that feeds ``fc`` and every conditional batch norm."""
        return self.latent_dim * (2 if self.shape_classes else 1)

    def to_dict(self) -> dict:
        return asdict(self)


class _CondBatchNorm(nn.Module):
    """``norm(x) * (1 + fc_gamma(c)) + fc_beta(c)``, the batch norm without affine parameters of its own."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.fc_gamma = nn.Linear(cond_dim, channels)
        self.fc_beta = nn.Linear(cond_dim, channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * (1 + self.fc_gamma(cond)[..., None, None]) + self.fc_beta(cond)[..., None, None]


class _ResBlock(nn.Module):
    """Post-activation residual block at a fixed resolution (the caller up-samples)."""

    def __init__(self, ch_in: int, ch_out: int, cond_dim: int, pad):
        super().__init__()
        mid = min(ch_in, ch_out)
        self.pad = pad
        self.conv1 = spectral_norm(nn.Conv2d(ch_in, mid, 3, padding=(1, 0), bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(mid, ch_out, 3, padding=(1, 0), bias=False))
        self.norm1 = _CondBatchNorm(mid, cond_dim)
        self.norm2 = _CondBatchNorm(ch_out, cond_dim)
        self.shortcut = spectral_norm(nn.Conv2d(ch_in, ch_out, 1, bias=False)) if ch_in != ch_out else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        h = F.leaky_relu(self.norm1(self.conv1(self.pad(x, 1)), cond), 0.2)
        h = F.leaky_relu(self.norm2(self.conv2(self.pad(h, 1)), cond), 0.2)
        return h + skip


def _replicate_u(x: torch.Tensor, amount: int) -> torch.Tensor:
    return F.pad(x, (amount, amount, 0, 0), mode="replicate")


def _circular_u(x: torch.Tensor, amount: int) -> torch.Tensor:
    return torch.cat([x[..., -amount:], x, x[..., :amount]], dim=-1)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def mirror_middle_half(half: torch.Tensor) -> torch.Tensor:
    """The authors' symmetric map from its middle half ``(B, C, H, W/2)``: ``[flip[W/4:], half, flip[:W/4]]``."""
    flipped = torch.flip(half, dims=[-1])
    q = half.shape[-1] // 2
    return torch.cat([flipped[..., q:], half, flipped[..., :q]], dim=-1)


def average_pole_rows(mesh_map: torch.Tensor) -> torch.Tensor:
    """The first and last rows replaced by their mean over the width (each pole is one vertex)."""
    top = mesh_map[:, :, :1].mean(-1, keepdim=True).expand(-1, -1, -1, mesh_map.shape[-1])
    bottom = mesh_map[:, :, -1:].mean(-1, keepdim=True).expand(-1, -1, -1, mesh_map.shape[-1])
    return torch.cat([top, mesh_map[:, :, 1:-1], bottom], dim=2)


class ConvMeshGenerator(nn.Module):
    """The authors' generator: ``forward(z (B, latent_dim), class_id (B,) long) -> (texture (B, 3, T, T) in [0, 1],
    mesh map (B, 3, 32, 32))``; vertices are ``deform_vertices(self.template(), mesh_map)``.

    Module and parameter names are the authors' (spectral norm as a parametrization: their ``X.weight_orig``,
    ``X.weight_u``, ``X.weight_v`` are ``X.parametrizations.weight.original``, ``...0._u``, ``...0._v`` here; see
    :func:`meshinv_lite.gan.imported.from_authors_state_dict`)."""

    def __init__(self, config: ConvMeshConfig = ConvMeshConfig()):
        super().__init__()
        self.config = cfg = config
        c512, c256, c128, c64 = (w // cfg.width_div for w in _WIDTHS)
        self.grid_h, self.grid_w = 8, 4 if cfg.symmetric else 8
        self.pad = _replicate_u if cfg.symmetric else _circular_u
        cond = cfg.condition_dim
        if cfg.shape_classes and cfg.color_classes:
            self.emb_class = nn.Embedding(cfg.shape_classes, cfg.latent_dim // 2)
            self.emb_color = nn.Embedding(cfg.color_classes, cfg.latent_dim // 2)
        elif cfg.shape_classes:
            self.emb_class = nn.Embedding(cfg.shape_classes, cfg.latent_dim)
        self.fc = nn.Linear(cond, self.grid_h * self.grid_w * c512)
        self.blk1 = _ResBlock(c512, c512, cond, self.pad)
        self.blk2 = _ResBlock(c512, c256, cond, self.pad)
        self.texture_blocks = [name for size, name in ((256, "blk3a"), (512, "blk3b"), (1024, "blk3c"))
                               if cfg.texture_size >= size]
        for name in self.texture_blocks:
            setattr(self, name, _ResBlock(c256, c256, cond, self.pad))
        self.blk4 = _ResBlock(c256, c128, cond, self.pad)
        self.blk5 = _ResBlock(c128, c128, cond, self.pad)
        self.blk6 = _ResBlock(c128, c64, cond, self.pad)
        self.conv_final = nn.Conv2d(c64, 3, 5, padding=(2, 0))
        self.blk3_mesh = _ResBlock(c256, c64, cond, self.pad)
        self.conv_mesh = nn.Conv2d(c64, 3, 5, padding=(2, 0))

    def template(self, device=None):
        """The authors' template this generator's maps belong to, in this package's frame and UV conventions."""
        from ..render.convmesh_template import convmesh_template

        cfg = self.config
        return convmesh_template(cfg.rings, cfg.texture_size, cfg.deform_size, device=device)

    def _condition(self, z: torch.Tensor, class_id: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        check_shape("z", z, (None, cfg.latent_dim), f"(B, {cfg.latent_dim}) latent codes")
        check_nonempty_batch("z", z)
        if not cfg.shape_classes:
            return z
        class_id = class_id.long().reshape(-1)
        if class_id.shape[0] != z.shape[0]:
            raise ValueError(f"class_id has {class_id.shape[0]} entries for a batch of {z.shape[0]} latents")
        if class_id.numel() and (class_id.min() < 0 or class_id.max() >= cfg.num_classes):
            raise ValueError(f"class_id must lie in [0, {cfg.num_classes}) for this generator, got "
                             f"{class_id.min().item()}..{class_id.max().item()}")
        if cfg.color_classes:
            shape, color = class_id // cfg.color_classes, class_id % cfg.color_classes
            return torch.cat([z, self.emb_class(shape), self.emb_color(color)], dim=1)
        return torch.cat([z, self.emb_class(class_id)], dim=1)

    def _trunk(self, cond: torch.Tensor) -> torch.Tensor:
        x = self.fc(cond).view(cond.shape[0], -1, self.grid_h, self.grid_w)
        x = _up(self.blk1(x, cond))
        return _up(self.blk2(x, cond))  # 32 x 16 (symmetric): where the mesh branch leaves

    def _mesh(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        m = F.leaky_relu(self.blk3_mesh(x, cond), 0.2)
        m = average_pole_rows(self.conv_mesh(self.pad(m, 2)))
        return mirror_middle_half(m) if self.config.symmetric else m

    def forward(self, z: torch.Tensor, class_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = self._condition(z, class_id)
        x = self._trunk(cond)
        t = x
        for name in self.texture_blocks:
            t = _up(getattr(self, name)(t, cond))
        t = _up(self.blk4(t, cond))
        t = _up(self.blk5(t, cond))
        t = F.leaky_relu(self.blk6(t, cond), 0.2)
        t = torch.tanh(self.conv_final(self.pad(t, 2)))
        if self.config.symmetric:
            t = mirror_middle_half(t)
        return (t + 1) * 0.5, self._mesh(x, cond)

    def deformation(self, z: torch.Tensor, class_id: torch.Tensor) -> torch.Tensor:
        """The mesh map alone (``forward(z, class_id)[1]``, without the texture blocks)."""
        cond = self._condition(z, class_id)
        return self._mesh(self._trunk(cond), cond)

    def sample(self, class_id: torch.Tensor, generator: Optional[torch.Generator] = None,
               truncation: Optional[float] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps for random ``z ~ N(0, I)``; ``truncation``: entries with ``|z_i| > truncation`` are redrawn (the
        authors sample CUB at 0.25)."""
        z = torch.randn(class_id.shape[0], self.config.latent_dim, generator=generator)
        if truncation is not None:
            while (bad := z.abs() > truncation).any():
                z[bad] = torch.randn(int(bad.sum()), generator=generator)
        dev = next(self.parameters()).device
        return self(z.to(dev), class_id.to(dev))
