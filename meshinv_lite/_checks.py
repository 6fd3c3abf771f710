"""Small input checks shared by the modules: each raises ``ValueError`` naming the argument."""
from __future__ import annotations

import torch


def check_shape(name: str, t: torch.Tensor, shape: tuple, what: str = "") -> None:
    """Check ``t``'s shape against ``shape``, where ``None`` matches any size.

    Example: ``check_shape("verts", v, (None, None, 3), "(B, N, 3) vertex positions")``.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    desc = what or "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if t.dim() != len(shape):
        raise ValueError(f"{name} must have {len(shape)} dimensions {desc}, got shape {tuple(t.shape)}")
    for i, s in enumerate(shape):
        if s is not None and t.shape[i] != s:
            raise ValueError(f"{name} must have shape {desc}, got {tuple(t.shape)} (dimension {i} should be {s})")


def check_finite(name: str, t: torch.Tensor) -> None:
    """Reject NaN or infinite values."""
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def check_batch(**tensors: torch.Tensor) -> int:
    """All tensors share the leading batch size (size 1 broadcasts); returns it."""
    sizes = {k: v.shape[0] for k, v in tensors.items()}
    big = {s for s in sizes.values() if s != 1}
    if len(big) > 1:
        listing = ", ".join(f"{k}={s}" for k, s in sizes.items())
        raise ValueError(f"mismatched batch sizes: {listing}")
    return big.pop() if big else 1


def image_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalize an image size to ``(H, W)`` and reject sizes below 8 pixels."""
    if isinstance(image_size, int):
        h = w = image_size
    else:
        h, w = (int(s) for s in image_size)
    if h < 8 or w < 8:
        raise ValueError(f"image size must be at least 8 x 8 pixels, got {h} x {w}")
    return h, w


#: How far outside ``[0, 1]`` image and mask values may stray (resampling overshoot) before they are refused.
RANGE_TOLERANCE = 1e-3


def check_unit_range(name: str, t: torch.Tensor, what: str = "image") -> torch.Tensor:
    """Images and masks cross public boundaries as floats in ``[0, 1]``; returns ``t`` (float64 as float32).

    Integer tensors (``uint8`` photos in 0-255) and floats outside ``[0, 1]`` (beyond
    :data:`RANGE_TOLERANCE`) are refused with the fix in the message: they would otherwise run to the end
    with losses thousands of times too large.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        fix = f"{name}.float() / 255" if t.dtype == torch.uint8 else f"{name}.float() (scaled to [0, 1])"
        raise TypeError(f"{name} is a {t.dtype} tensor; {what}s must be floats in [0, 1]: pass {fix}")
    if t.dtype == torch.float64:
        t = t.float()
    if t.numel():
        lo, hi = float(t.detach().min()), float(t.detach().max())
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            hint = " (0-255 values? divide by 255)" if hi > 2 else ""
            raise ValueError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; {what}s must lie in [0, 1]{hint}")
    return t


def check_nonempty_batch(name: str, t: torch.Tensor) -> None:
    """Refuse a batch of zero items (it would fail later in a reshape with no useful message)."""
    if t.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(t.shape)}): pass at least one item")


# Loss inputs (shared by meshinv_lite.losses and meshinv_lite.losses.baselines)

#: What a loss's ``reduction`` may be: a scalar mean or sum over the batch, or per image ``(B,)``.
REDUCTIONS = ("mean", "sum", "none")


def reduce_per_image(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-image values ``(B,)`` -> their mean, their sum, or themselves (``reduction="none"``)."""
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image
    raise ValueError(f"unknown reduction {reduction!r}; use one of {REDUCTIONS}")


def check_image_and_mask(name: str, image: torch.Tensor, mask: torch.Tensor) -> None:
    """An image ``(B, 3, H, W)`` and its mask ``(B, 1, H, W)``, finite, in ``[0, 1]``."""
    check_shape(f"{name}_img", image, (None, 3, None, None), "(B, 3, H, W) in [0, 1]")
    check_shape(f"{name}_mask", mask, (None, 1, None, None), "(B, 1, H, W) in [0, 1]")
    if image.shape[0] != mask.shape[0] or image.shape[2:] != mask.shape[2:]:
        raise ValueError(
            f"{name}_img {tuple(image.shape)} and {name}_mask {tuple(mask.shape)} differ in batch size or "
            "image size; the mask must be (B, 1, H, W) with the image's B, H, W"
        )
    check_finite(f"{name}_img", image)
    check_finite(f"{name}_mask", mask)
    check_unit_range(f"{name}_img", image)
    check_unit_range(f"{name}_mask", mask, "mask")


def check_image_pair(pred_img, pred_mask, target_img, target_mask, same_size: bool = False) -> None:
    """A predicted and a target image with their masks, of one batch size (one image size if ``same_size``)."""
    check_image_and_mask("pred", pred_img, pred_mask)
    check_image_and_mask("target", target_img, target_mask)
    if pred_img.shape[0] != target_img.shape[0]:
        raise ValueError(f"pred and target batch sizes differ: {pred_img.shape[0]} vs {target_img.shape[0]}")
    if same_size and pred_img.shape[2:] != target_img.shape[2:]:
        raise ValueError(f"pred and target images differ in size: {tuple(pred_img.shape[2:])} vs "
                         f"{tuple(target_img.shape[2:])}; this loss compares pixel by pixel")


def check_nonempty_foreground(name: str, mask: torch.Tensor, threshold: float) -> None:
    """Every mask of the batch has a foreground pixel (a Chamfer loss needs a point on each side)."""
    counts = (mask.detach() > threshold).flatten(1).sum(1)
    empty = [i for i, c in enumerate(counts.tolist()) if c == 0]
    if empty:
        raise ValueError(
            f"{name} has an empty foreground (no value > {threshold}) at batch index {empty}: a Chamfer loss "
            "needs at least one foreground point per image; check the mask or the camera, or drop these items"
        )


def require_extractor(name: str, extractor):
    """``extractor``, or a ValueError saying how to get one (feature losses need it)."""
    if extractor is None:
        raise ValueError(f"{name} needs a feature extractor: pass "
                         "extractor=meshinv_lite.features.load_feature_extractor()")
    return extractor


# Command-line arguments (argparse ``type=`` callables): a bad value exits with status 2 and one
# ``error: argument --name: ...`` line before any work starts.


def int_at_least(minimum: int):
    """An argparse type: an integer ``>= minimum``."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``nan`` and ``inf`` are refused)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


#: The FID views the evaluation protocol defines (:func:`meshinv_lite.render.protocol_azimuths`).
FID_VIEWS = (1, 10, 12)


def check_fid_views(views) -> tuple[int, ...]:
    """``views`` as a tuple of ints from :data:`FID_VIEWS`; ``ValueError`` naming ``views`` otherwise."""
    import numbers

    out = []
    for v in views:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) not in FID_VIEWS:
            raise ValueError(f"views must hold FID view counts from {FID_VIEWS}, got {v!r}")
        out.append(int(v))
    return tuple(out)


def fid_views(text: str) -> tuple[int, ...]:
    """An argparse type: a comma-separated list of FID views, e.g. ``1,10,12`` (``''``: none)."""
    import argparse

    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return check_fid_views([int(p) for p in parts])
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of {', '.join(map(str, FID_VIEWS))} "
                                         f"(or '' for none), got {text!r}") from None
