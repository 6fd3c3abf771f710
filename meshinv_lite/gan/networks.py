"""Networks of the GAN prior: a class-conditional UV-map generator and two discriminators.

All three work in the template's UV space (see :mod:`meshinv_lite.render.mesh`): ``u`` runs along a map's
width and wraps around the sphere, ``v`` along its height from pole to pole. Convolutions therefore pad
**circularly along u** and with zeros along ``v`` (:func:`uv_pad`).

* :class:`Generator` (ConvMesh-style, DESIGN.md section 5): ``[z, class embedding]`` -> linear ->
  low-resolution grid -> residual up-sampling blocks (nearest up-sampling, conditional batch norm driven
  by ``[z, class embedding]``, spectral norm) -> a deformation head at the deformation-map resolution and
  a texture head at the texture resolution. With ``symmetric=True`` (default) the network computes the
  ``u < 0.5`` half of every map and mirrors it (:func:`~meshinv_lite.render.mirror_uv_map`).
* :class:`UVDiscriminator`: judges (texture, deformation) maps, ignoring texels outside a visibility mask.
* :class:`PatchDiscriminator`: a PatchGAN on images (renders vs photos).

Images and texture maps are in ``[0, 1]`` at every public boundary; ``[-1, 1]`` only inside networks.
Every module is device-agnostic: move it with ``.to(device)``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .._checks import check_batch, check_nonempty_batch, check_shape
from ..config import Profile, get_profile
from ..render.mesh import mirror_uv_map

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------

#: Channel widths per profile: (max_channels at the lowest resolution, min_channels at the highest).
_GENERATOR_WIDTHS = {"quick": (64, 8), "lite": (128, 8), "paper": (512, 32)}
#: (uv_ndf, uv_max_channels, patch_ndf) per profile.
_DISCRIMINATOR_WIDTHS = {"quick": (8, 64, 8), "lite": (16, 128, 16), "paper": (32, 512, 64)}


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


@dataclass(frozen=True)
class GeneratorConfig:
    """Settings of :class:`Generator` (defaults: the lite profile, 12 SynthBirds species).

    Maps are square: texture ``(3, texture_size, texture_size)``, deformation
    ``(3, deform_size, deform_size)``. The network starts from a ``base_size`` grid (half as wide when
    ``symmetric``) and doubles the resolution per block; channels start at ``max_channels`` and halve
    per block, never below ``min_channels`` (so the cost per resolution level stays about constant).

    ``max_offset`` bounds the vertex offsets: ``deformation = max_offset * tanh(head)``; 1.5 covers
    SynthBirds' largest offsets (about 1.4, open wings and long tails) on the unit sphere. The
    deformation head starts with small weights (``deform_init_gain``) so initial meshes are sphere-like.
    """

    texture_size: int = 128
    deform_size: int = 32
    num_classes: int = 12
    latent_dim: int = 64
    class_embed_dim: int = 32
    base_size: int = 4
    max_channels: int = 128
    min_channels: int = 16
    symmetric: bool = True
    max_offset: float = 1.5
    deform_init_gain: float = 0.05
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        for name in ("texture_size", "deform_size", "base_size"):
            if not _is_power_of_two(getattr(self, name)):
                raise ValueError(f"GeneratorConfig.{name} must be a power of two, got {getattr(self, name)}")
        if not (self.base_size <= self.deform_size <= self.texture_size):
            raise ValueError(
                "GeneratorConfig needs base_size <= deform_size <= texture_size, got "
                f"{self.base_size}, {self.deform_size}, {self.texture_size}"
            )
        if self.symmetric and self.base_size < 2:
            raise ValueError("a symmetric generator needs base_size >= 2 (its grid is half as wide)")
        if self.num_classes < 1 or self.latent_dim < 1:
            raise ValueError("GeneratorConfig needs num_classes >= 1 and latent_dim >= 1")
        if self.min_channels < 1 or self.max_channels < self.min_channels:
            raise ValueError("GeneratorConfig needs 1 <= min_channels <= max_channels")

    @property
    def num_blocks(self) -> int:
        """Up-sampling blocks from ``base_size`` to ``texture_size``."""
        return int(math.log2(self.texture_size // self.base_size))

    @property
    def deform_level(self) -> int:
        """Index of the feature level (0 = base grid) at the deformation-map resolution."""
        return int(math.log2(self.deform_size // self.base_size))

    def channels(self) -> tuple[int, ...]:
        """Channel width at each resolution level ``base_size * 2**i``, ``i = 0 .. num_blocks``."""
        return tuple(max(self.min_channels, self.max_channels >> i) for i in range(self.num_blocks + 1))

    @classmethod
    def for_profile(cls, profile: str | Profile = "lite", num_classes: int = 12, **overrides: Any) -> "GeneratorConfig":
        """Map sizes from a profile (``quick``, ``lite``, ``paper``) and widths that suit its hardware."""
        prof = get_profile(profile)
        max_c, min_c = _GENERATOR_WIDTHS.get(prof.name, _GENERATOR_WIDTHS["lite"])
        base = cls(texture_size=prof.texture_size, deform_size=prof.deform_size, num_classes=num_classes,
                   max_channels=max_c, min_channels=min_c)
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Settings of :class:`UVDiscriminator` and :class:`PatchDiscriminator` (defaults: lite profile).

    UV discriminator: a texture branch at ``texture_size`` and a mesh branch at ``deform_size``; each
    halves the resolution per strided convolution (starting with ``uv_ndf`` channels, doubling up to
    ``uv_max_channels``) down to ``uv_min_size``, then scores every location. ``projection`` adds a
    class-projection term (Miyato & Koyama 2018) when ``num_classes > 1``.

    Patch discriminator: pix2pix's PatchGAN with ``patch_layers`` strided layers (3 gives 70 x 70
    receptive fields), ``patch_ndf`` channels in the first layer, optionally the mask as a 4th input.
    """

    texture_size: int = 128
    deform_size: int = 32
    render_size: int = 128
    num_classes: int = 12
    uv_ndf: int = 16
    uv_max_channels: int = 128
    uv_min_size: int = 4
    positional_encoding: bool = True
    projection: bool = True
    patch_ndf: int = 16
    patch_layers: int = 3
    patch_max_channels: int = 512
    patch_use_mask: bool = True
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        for name in ("texture_size", "deform_size", "uv_min_size"):
            if not _is_power_of_two(getattr(self, name)):
                raise ValueError(f"DiscriminatorConfig.{name} must be a power of two, got {getattr(self, name)}")
        if self.uv_min_size > self.deform_size:
            raise ValueError(f"uv_min_size ({self.uv_min_size}) must not exceed deform_size ({self.deform_size})")
        if self.deform_size > self.texture_size:
            raise ValueError("DiscriminatorConfig needs deform_size <= texture_size")
        if self.patch_layers < 1:
            raise ValueError("patch_layers must be >= 1")

    @classmethod
    def for_profile(cls, profile: str | Profile = "lite", num_classes: int = 12, **overrides: Any) -> "DiscriminatorConfig":
        """Sizes from a profile and widths that suit its hardware (paper: ndf 64 PatchGAN)."""
        prof = get_profile(profile)
        uv_ndf, uv_max, patch_ndf = _DISCRIMINATOR_WIDTHS.get(prof.name, _DISCRIMINATOR_WIDTHS["lite"])
        base = cls(texture_size=prof.texture_size, deform_size=prof.deform_size, render_size=prof.render_size,
                   num_classes=num_classes, uv_ndf=uv_ndf, uv_max_channels=uv_max, patch_ndf=patch_ndf)
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# UV-aware building blocks
# --------------------------------------------------------------------------------------------------


def uv_pad(x: torch.Tensor, pad: int, u_mode: str = "circular") -> torch.Tensor:
    """Pad a UV feature map ``(B, C, H, W)`` by ``pad`` on every side -> ``(B, C, H + 2p, W + 2p)``.

    Along ``v`` (height) with zeros. Along ``u`` (width):

    * ``"circular"``: the map wraps around the sphere (column -1 is the last column);
    * ``"mirror"``: for the ``u < 0.5`` half of a left-right symmetric map. The full map is
      ``[half, flip(half)]``, so circular padding of the full map puts the half's own columns,
      reversed, on both sides: this mode is exactly circular padding of the mirrored full map.
    """
    if pad == 0:
        return x
    w = x.shape[-1]
    if pad > w:
        raise ValueError(f"cannot pad {pad} columns around a UV map only {w} wide; use a larger base grid")
    if u_mode == "circular":
        x = torch.cat([x[..., w - pad:], x, x[..., :pad]], dim=-1)
    elif u_mode == "mirror":
        x = torch.cat([x[..., :pad].flip(-1), x, x[..., w - pad:].flip(-1)], dim=-1)
    else:
        raise ValueError(f"unknown u padding mode {u_mode!r}; use 'circular' or 'mirror'")
    return F.pad(x, (0, 0, pad, pad))


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(module) if enabled else module


class UVConv2d(nn.Module):
    """A convolution on UV maps: circular (or mirror, see :func:`uv_pad`) padding along ``u``, zeros along ``v``.

    ``(B, C_in, H, W) -> (B, C_out, H', W')`` with ``H' = (H + 2 * pad - k) // stride + 1`` (same for W).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, pad: Optional[int] = None,
                 u_mode: str = "circular", spectral_norm: bool = True, bias: bool = True):
        super().__init__()
        self.pad = kernel_size // 2 if pad is None else pad
        self.u_mode = u_mode
        self.conv = _sn(nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=0, bias=bias), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(uv_pad(x, self.pad, self.u_mode))


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift come from a condition vector: ``(1 + gamma(c)) * BN(x) + beta(c)``.

    ``x`` ``(B, C, H, W)``, ``cond`` ``(B, D)``. ``gamma`` and ``beta`` start at zero (plain BN at init).
    """

    def __init__(self, num_features: int, cond_dim: int, spectral_norm: bool = True):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gamma = _sn(nn.Linear(cond_dim, num_features, bias=False), spectral_norm)
        self.beta = _sn(nn.Linear(cond_dim, num_features, bias=False), spectral_norm)
        # Spectral norm rescales the weights, so zero-init is done by a learnable gain instead.
        self.gain = nn.Parameter(torch.zeros(2))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        g = 1 + self.gain[0] * self.gamma(cond)[:, :, None, None]
        b = self.gain[1] * self.beta(cond)[:, :, None, None]
        return self.bn(x) * g + b


class UpBlock(nn.Module):
    """Residual up-sampling block: ``(B, C_in, H, W) -> (B, C_out, 2H, 2W)``.

    Main path: CBN -> ReLU -> nearest x2 -> conv3x3 -> CBN -> ReLU -> conv3x3; skip: nearest x2 -> conv1x1.
    """

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, u_mode: str, spectral_norm: bool):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_ch, cond_dim, spectral_norm)
        self.conv1 = UVConv2d(in_ch, out_ch, 3, u_mode=u_mode, spectral_norm=spectral_norm)
        self.bn2 = ConditionalBatchNorm2d(out_ch, cond_dim, spectral_norm)
        self.conv2 = UVConv2d(out_ch, out_ch, 3, u_mode=u_mode, spectral_norm=spectral_norm)
        self.skip = _sn(nn.Conv2d(in_ch, out_ch, 1), spectral_norm) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


def _check_class_id(class_id: torch.Tensor, num_classes: int, batch: int) -> None:
    check_shape("class_id", class_id, (batch,), f"({batch},) long class indices")
    if class_id.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"class_id must be an integer tensor, got {class_id.dtype}")
    if batch and (int(class_id.min()) < 0 or int(class_id.max()) >= num_classes):
        raise ValueError(f"class_id values must lie in [0, {num_classes}), got [{int(class_id.min())}, {int(class_id.max())}]")


def positional_encoding(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(1, 3, H, W)`` UV position channels: ``sin(2 pi u)``, ``cos(2 pi u)`` (continuous across the seam) and ``2 v - 1``."""
    u = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
    v = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
    su = torch.sin(2 * math.pi * u)[None, :].expand(height, width)
    cu = torch.cos(2 * math.pi * u)[None, :].expand(height, width)
    vv = (2 * v - 1)[:, None].expand(height, width)
    return torch.stack([su, cu, vv])[None]


# --------------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------------


class Generator(nn.Module):
    """Class-conditional generator of UV maps (textured meshes in the template's topology).

    ``forward(z (B, latent_dim), class_id (B,) long) -> (texture (B, 3, Ht, Wt) in [0, 1],
    deformation (B, 3, Hd, Wd))``; vertex positions are then
    :func:`~meshinv_lite.render.deform_vertices` ``(template, deformation)``.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = cfg = config
        sn = cfg.spectral_norm
        self.u_mode = "mirror" if cfg.symmetric else "circular"
        ch = cfg.channels()
        self.base_h = cfg.base_size
        self.base_w = cfg.base_size // 2 if cfg.symmetric else cfg.base_size
        self.embed = nn.Embedding(cfg.num_classes, cfg.class_embed_dim)
        cond_dim = cfg.latent_dim + cfg.class_embed_dim
        self.fc = _sn(nn.Linear(cond_dim, ch[0] * self.base_h * self.base_w), sn)
        self.blocks = nn.ModuleList(UpBlock(ch[i], ch[i + 1], cond_dim, self.u_mode, sn) for i in range(cfg.num_blocks))
        cd, ct = ch[cfg.deform_level], ch[-1]
        self.deform_bn = nn.BatchNorm2d(cd)
        self.deform_head = UVConv2d(cd, 3, 3, u_mode=self.u_mode, spectral_norm=False)
        self.texture_bn = nn.BatchNorm2d(ct)
        self.texture_head = UVConv2d(ct, 3, 3, u_mode=self.u_mode, spectral_norm=False)
        with torch.no_grad():  # small initial offsets: meshes start close to the sphere
            self.deform_head.conv.weight.mul_(cfg.deform_init_gain)
            self.deform_head.conv.bias.zero_()

    def forward(self, z: torch.Tensor, class_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._maps(z, class_id, texture=True)

    def template(self, device=None):
        """The template this generator's maps belong to: the package's UV sphere (31 x 32)."""
        from ..render.mesh import make_uv_sphere

        return make_uv_sphere(device=device)

    def deformation(self, z: torch.Tensor, class_id: torch.Tensor) -> torch.Tensor:
        """The deformation map ``(B, 3, Hd, Wd)`` alone, equal to ``forward(z, class_id)[1]``: the blocks above the
        deformation map's resolution, which only feed the texture, are not run (a shape-only inversion stage)."""
        return self._maps(z, class_id, texture=False)[1]

    def _maps(self, z: torch.Tensor, class_id: torch.Tensor, texture: bool) -> tuple[Optional[torch.Tensor], torch.Tensor]:
        cfg = self.config
        check_shape("z", z, (None, cfg.latent_dim), f"(B, {cfg.latent_dim}) latent codes")
        check_nonempty_batch("z", z)
        b = z.shape[0]
        _check_class_id(class_id, cfg.num_classes, b)
        cond = torch.cat([z, self.embed(class_id.long())], dim=1)
        x = self.fc(cond).view(b, -1, self.base_h, self.base_w)
        deform = None
        last = cfg.num_blocks if texture else cfg.deform_level
        for level in range(last + 1):
            if level == cfg.deform_level:
                deform = torch.tanh(self.deform_head(F.relu(self.deform_bn(x)))) * cfg.max_offset
            if level < last:
                x = self.blocks[level](x, cond)
        if cfg.symmetric:
            deform = mirror_uv_map(deform, negate_x=True)
        if not texture:
            return None, deform
        tex = torch.tanh(self.texture_head(F.relu(self.texture_bn(x))))
        if cfg.symmetric:
            tex = mirror_uv_map(tex, negate_x=False)
        return (tex + 1) * 0.5, deform

    def sample(self, class_id: torch.Tensor, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps for random ``z ~ N(0, I)`` (drawn on the CPU with ``generator``, then moved to the module's device)."""
        z = torch.randn(class_id.shape[0], self.config.latent_dim, generator=generator)
        dev = next(self.parameters()).device
        return self(z.to(dev), class_id.to(dev))


# --------------------------------------------------------------------------------------------------
# Discriminators
# --------------------------------------------------------------------------------------------------


class _UVBranch(nn.Module):
    """Strided UV convolutions ``size -> min_size`` (``uv_ndf`` channels first, doubling), then a 3x3 score
    layer and an optional class projection. Needs ``size > min_size`` or one 3x3 layer at ``size == min_size``."""

    def __init__(self, in_ch: int, size: int, cfg: DiscriminatorConfig):
        super().__init__()
        sn = cfg.spectral_norm
        layers: list[nn.Module] = []
        c, s, out = in_ch, size, cfg.uv_ndf
        while s > cfg.uv_min_size:  # 4x4 stride-2 convolutions; channels double as the size halves
            layers += [UVConv2d(c, out, 4, stride=2, pad=1, spectral_norm=sn), nn.LeakyReLU(0.2)]
            c, s, out = out, s // 2, min(cfg.uv_max_channels, out * 2)
        if not layers:  # the branch's input is already at min_size
            layers += [UVConv2d(c, out, 3, spectral_norm=sn), nn.LeakyReLU(0.2)]
            c = out
        self.features = nn.Sequential(*layers)
        self.score = UVConv2d(c, 1, 3, spectral_norm=sn)
        use_proj = cfg.projection and cfg.num_classes > 1
        self.proj = _sn(nn.Embedding(cfg.num_classes, c), sn) if use_proj else None

    def forward(self, x: torch.Tensor, class_id: Optional[torch.Tensor]) -> torch.Tensor:
        """``(B, C, S, S) -> (B, 1, s, s)`` patch scores (``s = min_size``)."""
        h = self.features(x)
        out = self.score(h)
        if self.proj is not None:
            if class_id is None:
                raise ValueError("this discriminator is class-conditional (projection=True): pass class_id")
            out = out + (self.proj(class_id.long())[:, :, None, None] * h).sum(1, keepdim=True)
        return out


class UVDiscriminator(nn.Module):
    """Judges (texture, deformation) UV maps, seeing only texels inside a visibility mask.

    ``forward(texture (B, 3, Ht, Wt) in [0, 1], deformation (B, 3, Hd, Wd), visibility (B, 1, Ht, Wt)
    in [0, 1], class_id (B,) long or None) -> (B, 2)`` scores (higher = more real), column 0 from the
    texture branch, column 1 from the mesh branch, each the mean of that branch's patch scores
    (:meth:`forward_maps` gives the patch maps).

    * Texture branch (at ``Ht``): ``[texture * visibility (as [-1, 1] then masked), visibility,
      positional encoding]``. Texels outside the mask cannot influence the output.
    * Mesh branch (at ``Hd``): ``[masked texture and visibility area-averaged to Hd, deformation,
      positional encoding]`` (ConvMesh's "mesh discriminator sees the texture down-sampled").
    * Spectral norm, circular padding along ``u``; optional class projection per branch.
    Simpler than ConvMesh's: one texture scale (not multi-scale).
    """

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.config = cfg = config
        pe = 3 if cfg.positional_encoding else 0
        self.texture_branch = _UVBranch(3 + 1 + pe, cfg.texture_size, cfg)
        self.mesh_branch = _UVBranch(3 + 1 + 3 + pe, cfg.deform_size, cfg)

    def _inputs(self, texture, deformation, visibility):
        cfg = self.config
        t, d = cfg.texture_size, cfg.deform_size
        check_shape("texture", texture, (None, 3, t, t), f"(B, 3, {t}, {t})")
        check_shape("deformation", deformation, (None, 3, d, d), f"(B, 3, {d}, {d})")
        check_shape("visibility", visibility, (None, 1, t, t), f"(B, 1, {t}, {t}) visibility mask")
        check_batch(texture=texture, deformation=deformation, visibility=visibility)
        vis = visibility.to(texture.dtype)
        tex = (texture * 2 - 1) * vis  # invisible texels -> exactly 0, whatever they held
        b = tex.shape[0]
        tex_in = [tex, vis]
        small = F.adaptive_avg_pool2d(torch.cat([tex, vis], 1), d)
        mesh_in = [small, deformation]
        if cfg.positional_encoding:
            tex_in.append(positional_encoding(t, t, tex.device, tex.dtype).expand(b, -1, -1, -1))
            mesh_in.append(positional_encoding(d, d, tex.device, tex.dtype).expand(b, -1, -1, -1))
        return torch.cat(tex_in, 1), torch.cat(mesh_in, 1)

    def forward_maps(self, texture, deformation, visibility, class_id=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch score maps ``(B, 1, s, s)`` of the texture and the mesh branch."""
        tex_in, mesh_in = self._inputs(texture, deformation, visibility)
        if class_id is not None:
            _check_class_id(class_id, self.config.num_classes, tex_in.shape[0])
        return self.texture_branch(tex_in, class_id), self.mesh_branch(mesh_in, class_id)

    def forward(self, texture, deformation, visibility, class_id=None) -> torch.Tensor:
        t_map, m_map = self.forward_maps(texture, deformation, visibility, class_id)
        return torch.stack([t_map.flatten(1).mean(1), m_map.flatten(1).mean(1)], dim=1)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix) on images: ``(B, 3, H, W)`` in ``[0, 1]`` (+ mask ``(B, 1, H, W)``) -> ``(B, 1, h, w)`` scores.

    ``patch_layers`` strided 4x4 convolutions (LeakyReLU 0.2), one 4x4 stride-1 layer, a 4x4 score layer;
    spectral norm instead of batch norm. Use with a least-squares (LSGAN) loss per patch.
    """

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.config = cfg = config
        sn = cfg.spectral_norm
        c_in = 4 if cfg.patch_use_mask else 3
        layers: list[nn.Module] = [_sn(nn.Conv2d(c_in, cfg.patch_ndf, 4, 2, 1), sn), nn.LeakyReLU(0.2)]
        c = cfg.patch_ndf
        for i in range(1, cfg.patch_layers + 1):
            out = min(cfg.patch_max_channels, cfg.patch_ndf * 2 ** i)
            stride = 2 if i < cfg.patch_layers else 1
            layers += [_sn(nn.Conv2d(c, out, 4, stride, 1), sn), nn.LeakyReLU(0.2)]
            c = out
        layers.append(_sn(nn.Conv2d(c, 1, 4, 1, 1), sn))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        check_shape("image", image, (None, 3, None, None), "(B, 3, H, W) in [0, 1]")
        x = image * 2 - 1
        if self.config.patch_use_mask:
            if mask is None:
                raise ValueError("this PatchDiscriminator takes the mask as a 4th channel (patch_use_mask=True): pass mask")
            check_shape("mask", mask, (image.shape[0], 1) + tuple(image.shape[2:]), "(B, 1, H, W) like the image")
            x = torch.cat([x, mask.to(x.dtype) * 2 - 1], dim=1)
        elif mask is not None:
            raise ValueError("patch_use_mask=False: this discriminator takes no mask")
        return self.net(x)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for parameters and floating-point buffers.

    Floating-point buffers (batch-norm running statistics, spectral-norm power-iteration vectors) are
    averaged too, BigGAN-style; spectral-norm vectors (``..._u``, ``..._v``) are re-normalized to unit
    length afterwards, as power iteration keeps them. Integer buffers (``num_batches_tracked``) are copied.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"EMA decay must lie in [0, 1], got {decay}")
    src_p, dst_p = dict(model.named_parameters()), dict(ema_model.named_parameters())
    src_b, dst_b = dict(model.named_buffers()), dict(ema_model.named_buffers())
    if src_p.keys() != dst_p.keys() or src_b.keys() != dst_b.keys():
        diff = sorted((set(src_p) ^ set(dst_p)) | (set(src_b) ^ set(dst_b)))
        raise ValueError(f"EMA model and model differ in structure (e.g. {diff[:5]}); build both from the same config")
    for name, p in src_p.items():
        dst_p[name].lerp_(p.detach(), 1.0 - decay)
    for name, b in src_b.items():
        d = dst_b[name]
        if d.is_floating_point():
            d.lerp_(b, 1.0 - decay)
            if "parametrizations" in name and name.endswith(("._u", "._v")):
                d.div_(d.norm().clamp_min(1e-12))
        else:
            d.copy_(b)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter elements of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
