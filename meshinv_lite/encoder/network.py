"""The image encoder: one forward pass from a photo to a latent, a species, a camera and a texture flow.

Regression methods (CMR, U-CMR, UMR, SMR) predict a mesh from an image in one forward pass; MeshInversion
searches the GAN's latent space instead. :class:`ImageEncoder` is the regression side of that comparison,
trained on renders of the shipped prior's own samples (:mod:`meshinv_lite.encoder.training`):

* ``z`` ``(B, D)``: the prior's latent (regressed, so it tends to the mean of the latents that explain an image);
* ``class_logits`` ``(B, C)``: the species;
* the camera: azimuth as a distribution over ``azimuth_bins`` bins of the full circle (several peaks where the
  image is ambiguous: a hypothesis list for a photo without a camera), elevation, log-scale and translation;
* ``flow`` ``(B, 2, F, F)``: the *texture flow* of CMR: for each texel of the UV map, the normalized image
  position ``(x, y)`` (x right, y up, ``[-1, 1]``) whose colour it takes. Sampling the input there gives a
  texture made of the photo's own pixels (sharp where the texel is seen, a copy of the front where it is not).

:class:`SegmentationNet` is a small U-Net that finds the bird's mask in a photo that brings none.

Input convention (both nets): RGB ``(B, 3, S, S)`` in ``[0, 1]`` (the encoder also takes the mask ``(B, 1, S, S)``
as a fourth channel), resized to the net's ``image_size``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..render.camera import WeakPerspectiveCamera, view_rotation


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of :class:`ImageEncoder` and :class:`SegmentationNet` (the shipped file records them)."""

    latent_dim: int = 64
    num_classes: int = 12
    image_size: int = 64          # encoder input size
    widths: tuple[int, ...] = (32, 64, 128, 192)
    hidden: int = 256
    azimuth_bins: int = 36
    flow_size: int = 32
    seg_image_size: int = 64      # segmentation input size (logits are upsampled to the photo's size)
    seg_widths: tuple[int, ...] = (16, 32, 64, 128)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    groups = max(1, min(8, cout // 8))
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True))


@dataclass
class EncoderOutput:
    """What :class:`ImageEncoder` predicts for ``B`` images (see the module docstring)."""

    z: torch.Tensor                  # (B, D)
    class_logits: torch.Tensor       # (B, C)
    azimuth_logits: torch.Tensor     # (B, K) over bins of 360 / K degrees, bin k centred on k * 360 / K
    azimuth_offset: torch.Tensor     # (B, K) degrees within each bin, in [-180 / K, 180 / K]
    elevation: torch.Tensor          # (B,) degrees
    log_scale: torch.Tensor          # (B,)
    translation: torch.Tensor        # (B, 2) normalized image units
    flow: torch.Tensor               # (B, 2, F, F) in [-1, 1]

    @property
    def class_id(self) -> torch.Tensor:
        """``(B,)`` the most likely class."""
        return self.class_logits.argmax(1)

    def azimuths(self, k: int = 1) -> torch.Tensor:
        """``(B, k)`` degrees in ``[0, 360)``: the centres (plus offsets) of the ``k`` most likely azimuth bins."""
        n = self.azimuth_logits.shape[1]
        top = self.azimuth_logits.topk(min(k, n), dim=1).indices
        off = torch.gather(self.azimuth_offset, 1, top)
        return (top.to(off.dtype) * (360.0 / n) + off) % 360.0

    def camera(self, azimuth: Optional[torch.Tensor] = None) -> WeakPerspectiveCamera:
        """``B`` cameras from the prediction (``azimuth`` ``(B,)`` degrees overrides the most likely one)."""
        az = self.azimuths(1)[:, 0] if azimuth is None else azimuth
        el = self.elevation.clamp(-80.0, 80.0)
        rot = view_rotation(az.detach().double().cpu(), el.detach().double().cpu()).to(self.z)
        return WeakPerspectiveCamera(self.log_scale.exp(), self.translation, rot)

    def __getitem__(self, idx) -> "EncoderOutput":
        idx = slice(idx, idx + 1) if isinstance(idx, int) else idx
        return EncoderOutput(*(getattr(self, f)[idx] for f in ("z", "class_logits", "azimuth_logits", "azimuth_offset",
                                                              "elevation", "log_scale", "translation", "flow")))


class ImageEncoder(nn.Module):
    """``(image (B, 3, S, S) in [0, 1], mask (B, 1, S, S) in [0, 1]) -> EncoderOutput`` (module docstring)."""

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.config = c = config
        layers, cin = [], 4
        for w in c.widths:
            layers.append(_block(cin, w, 2))
            cin = w
        self.trunk = nn.Sequential(*layers)
        cells = c.image_size // 2 ** len(c.widths)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * cells * cells, c.hidden), nn.ReLU(inplace=True))
        self.head_z = nn.Linear(c.hidden, c.latent_dim)
        self.head_class = nn.Linear(c.hidden, c.num_classes)
        self.head_az = nn.Linear(c.hidden, 2 * c.azimuth_bins)
        self.head_cam = nn.Linear(c.hidden, 4)  # elevation / 45, log scale, translation
        self.flow_cells = 4
        self.head_flow = nn.Linear(c.hidden, 64 * self.flow_cells ** 2)
        ups, ch, size = [], 64, self.flow_cells
        while size < c.flow_size:
            ups += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(ch, 32, 3, 1, 1),
                    nn.ReLU(inplace=True)]
            ch, size = 32, size * 2
        ups.append(nn.Conv2d(ch, 2, 3, 1, 1))
        self.flow_decoder = nn.Sequential(*ups)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> EncoderOutput:
        c = self.config
        x = torch.cat([image, mask], 1)
        if x.shape[-1] != c.image_size or x.shape[-2] != c.image_size:
            x = F.interpolate(x, size=(c.image_size, c.image_size), mode="bilinear", align_corners=False, antialias=True)
        h = self.fc(self.trunk(x * 2 - 1))
        az = self.head_az(h)
        half_bin = 180.0 / c.azimuth_bins
        cam = self.head_cam(h)
        flow = self.flow_decoder(self.head_flow(h).view(-1, 64, self.flow_cells, self.flow_cells))
        return EncoderOutput(
            z=self.head_z(h), class_logits=self.head_class(h), azimuth_logits=az[:, :c.azimuth_bins],
            azimuth_offset=torch.tanh(az[:, c.azimuth_bins:]) * half_bin, elevation=cam[:, 0] * 45.0,
            log_scale=cam[:, 1], translation=cam[:, 2:4], flow=torch.tanh(flow))


class SegmentationNet(nn.Module):
    """A small U-Net: RGB ``(B, 3, S, S)`` in ``[0, 1]`` -> mask logits ``(B, 1, S, S)`` (bird > 0)."""

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.config = config
        w = config.seg_widths
        self.stem = _block(3, w[0], 1)
        self.down = nn.ModuleList(_block(w[i], w[i + 1], 2) for i in range(len(w) - 1))
        self.up = nn.ModuleList(_block(w[i + 1] + w[i], w[i], 1) for i in reversed(range(len(w) - 1)))
        self.out = nn.Conv2d(w[0], 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = image.shape[-2:]
        s = self.config.seg_image_size
        x = image if tuple(size) == (s, s) else F.interpolate(image, size=(s, s), mode="bilinear",
                                                              align_corners=False, antialias=True)
        skips = [self.stem(x * 2 - 1)]
        for d in self.down:
            skips.append(d(skips[-1]))
        h = skips.pop()
        for u in self.up:
            skip = skips.pop()
            h = u(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        logits = self.out(h)
        if tuple(size) != (s, s):
            logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
        return logits


def texel_points(deform_map: torch.Tensor, template, size: int) -> torch.Tensor:
    """Surface points at the centres of a ``size x size`` UV grid: ``(B, size, size, 3)``.

    The template sphere at ``(u, v)`` (``v = 0`` the north pole, ``u`` the longitude, as
    :func:`~meshinv_lite.render.make_uv_sphere` lays it out) plus the deformation map ``(B, 3, Hd, Wd)`` sampled there.
    """
    from ..render.mesh import sample_uv_map

    centres = (torch.arange(size, dtype=deform_map.dtype, device=deform_map.device) + 0.5) / size
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    theta, phi = v * math.pi, u * 2 * math.pi
    sphere = torch.stack([theta.sin() * phi.sin(), theta.cos(), theta.sin() * phi.cos()], -1)  # (F, F, 3)
    offsets = sample_uv_map(deform_map, torch.stack([u, v], -1)).permute(0, 2, 3, 1)            # (B, F, F, 3)
    return sphere[None] + offsets


def flow_targets(deform_map: torch.Tensor, camera: WeakPerspectiveCamera, template, size: int) -> torch.Tensor:
    """Where each texel of a ``size x size`` UV grid lands in the image: ``(B, 2, size, size)`` normalized ``(x, y)``."""
    pts = texel_points(deform_map, template, size)
    b = pts.shape[0]
    proj = camera.project(pts.reshape(b, -1, 3))
    return proj.reshape(b, size, size, 2).permute(0, 3, 1, 2)


def sample_flow(image: torch.Tensor, flow: torch.Tensor, texture_size: int) -> torch.Tensor:
    """The texture a flow ``(B, 2, F, F)`` takes from ``image`` ``(B, 3, H, W)``: ``(B, 3, T, T)`` in ``[0, 1]``."""
    if flow.shape[-1] != texture_size:
        flow = F.interpolate(flow, size=(texture_size, texture_size), mode="bilinear", align_corners=False)
    grid = torch.stack([flow[:, 0], -flow[:, 1]], -1)  # grid_sample: y down
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
