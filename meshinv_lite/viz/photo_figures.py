"""Figures of notebook 07: a photo with its reconstruction overlaid and turned, and the camera/species hypotheses."""
from __future__ import annotations

import torch

from .figures import _to_hwc, image_grid


def photo_overlay(result, novel_views: int = 4, view_size: int = 128):
    """The picture of a :class:`~meshinv_lite.photo.PhotoReconstruction`. Top: the photo with its
    mask's outline (white); the reconstruction rendered with the estimated camera and pasted on the photo
    (its outline yellow); the square crop the inversion saw and the render of it. Bottom: ``novel_views``
    views turned about the vertical axis. The title names the class (species, body type) and the camera."""
    import matplotlib.pyplot as plt

    from ..config import RenderConfig
    from ..render.camera import WeakPerspectiveCamera
    from ..render.dibr import render_mesh

    rec, crop, tm = result.reconstruction, result.crop, result.template
    dev = rec.vertices.device
    az, el = result.azimuth_elevation
    turns = [az + 360.0 * (i + 1) / (novel_views + 1) for i in range(novel_views)]
    with torch.no_grad():
        out = render_mesh(tm, rec.vertices, rec.camera, rec.texture, RenderConfig(image_size=crop.size), soft=False)
        photo = result.photo.image.cpu()
        pasted = crop.paste(out.image[0].cpu(), out.mask[0].cpu(), photo)
        cams = WeakPerspectiveCamera.from_view(turns, 20.0, float(rec.camera.scale[0]), device=dev)
        nv = render_mesh(tm, rec.vertices.expand(novel_views, -1, -1), cams, rec.texture.expand(novel_views, -1, -1, -1),
                         RenderConfig(image_size=view_size), background=torch.ones(3, device=dev), soft=False)
    rec_mask = crop.uncrop_mask(out.mask[0].cpu())[0].numpy()
    m = result.photo.mask[0].cpu().numpy()
    h, w = m.shape
    cols = max(4, novel_views)
    fig, axes = plt.subplots(2, cols, figsize=(2.6 * cols, 5.4))
    axes[0, 0].imshow(_to_hwc(photo))
    axes[0, 0].contour(m, levels=[0.5], colors="white", linewidths=1.2)
    axes[0, 0].set_title(f"photo ({result.photo.source_size[1]}x{result.photo.source_size[0]}) + mask", fontsize=9)
    axes[0, 1].imshow(_to_hwc(pasted))
    axes[0, 1].contour(rec_mask, levels=[0.5], colors="yellow", linewidths=1.0)
    axes[0, 1].contour(m, levels=[0.5], colors="white", linewidths=0.8, linestyles="dashed")
    axes[0, 1].set_title(f"reconstruction on the photo (IoU {float(rec.iou[0]):.2f})", fontsize=9)
    axes[0, 2].imshow(_to_hwc(result.image[0].cpu()))
    axes[0, 2].set_title(f"the crop it saw ({crop.size} px)", fontsize=9)
    axes[0, 3].imshow(_to_hwc(out.image[0].cpu()))
    axes[0, 3].set_title("render, estimated camera", fontsize=9)
    for i in range(novel_views):
        axes[1, i].imshow(_to_hwc(nv.image[i].cpu()))
        axes[1, i].set_title(f"turned to azimuth {turns[i] % 360:.0f}°", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    cid = result.class_id
    name = result.class_name(cid)
    how = "estimated" if result.hypotheses is not None else "given"
    fig.suptitle(f"{name} (class {cid}); camera azimuth {az:.0f}°, elevation {el:.0f}° ({how})", fontsize=11)
    fig.tight_layout()
    return fig


def hypotheses_figure(result):
    """Every camera + species hypothesis of a :class:`~meshinv_lite.photo.PhotoReconstruction` after its
    inversion, beside the crop: species, viewpoint and final loss in the title; the winner marked."""
    from ..config import RenderConfig
    from ..render.camera import azimuth_elevation
    from ..render.dibr import render_mesh

    c = result.candidates
    tm = result.template
    with torch.no_grad():
        out = render_mesh(tm, c.vertices, c.camera, c.texture, RenderConfig(image_size=result.crop.size),
                          background=torch.ones(3, device=c.vertices.device), soft=False)
    az, el = azimuth_elevation(c.camera.rotation)
    titles = ["the crop"]
    for i in range(len(c)):
        cid = int(c.class_id[i])
        name = result.class_name(cid)
        mark = "  <- chosen" if i == result.chosen else ""
        titles.append(f"{name}, az {float(az[i]):.0f}° el {float(el[i]):.0f}°\nloss {float(result.final_losses[i]):.3f}{mark}")
    return image_grid([result.image[0].cpu()] + list(out.image.cpu()), nrow=len(c) + 1, size=2.0, titles=titles,
                      suptitle="hypotheses after inversion (lowest final loss wins)")
