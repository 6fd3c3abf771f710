"""One photo in, a textured mesh out: the whole method for a learner's own picture.

:func:`reconstruct_photo` chains :mod:`meshinv_lite.photo` (read, check, frame),
:mod:`meshinv_lite.photo.viewpoint` (camera and species hypotheses, when not given) and
:func:`meshinv_lite.inversion.invert` (every hypothesis is inverted with camera refinement; the lowest final
loss wins), then writes what a person wants to look at (:func:`write_outputs`). The command is
``python -m meshinv_lite.cli reconstruct photo.png --mask mask.png --out out/``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import torch

from ..inversion.adapt import AdaptConfig, adapt_reconstruction
from ..inversion.config import InversionConfig
from ..inversion.search import Reconstruction, invert
from ..render.camera import WeakPerspectiveCamera, azimuth_elevation
from ..render.mesh import TemplateMesh, make_uv_sphere
from .load import Crop, Photo, crop_to_square, load_photo
from .viewpoint import ViewHypotheses, ViewSearchConfig, encoder_hypotheses, fit_box, search_views


@dataclass
class PhotoReconstruction:
    """The result for one photo.

    reconstruction: the winning hypothesis' :class:`~meshinv_lite.inversion.Reconstruction` (one item);
    photo, crop, image, mask: the input, its square crop and the crop ``(1, 3, S, S)`` / ``(1, 1, S, S)``;
    hypotheses: what was searched (``None`` when camera and class were given); candidates: the inversion
    of every hypothesis (``K`` items); final_losses ``(K,)``: their final losses; chosen: the winner's
    index; timings: seconds per stage; prior: which prior file ran; category: ``"birds"`` or ``"cars"``
    (whose class names the summary uses).
    """

    reconstruction: Reconstruction
    photo: Photo
    crop: Crop
    image: torch.Tensor
    mask: torch.Tensor
    template: TemplateMesh
    hypotheses: Optional[ViewHypotheses]
    hypothesis_classes: torch.Tensor
    hypothesis_cameras: WeakPerspectiveCamera
    final_losses: torch.Tensor
    chosen: int
    timings: dict = field(default_factory=dict)
    prior: dict = field(default_factory=dict)
    candidates: Optional[Reconstruction] = None
    category: str = "birds"

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class table of :attr:`category` (index = class id)."""
        from ..data.category import get_category

        return get_category(self.category).class_names

    def class_name(self, class_id: int) -> str:
        """The name of a class id (its number as text when out of the table)."""
        names = self.class_names
        return names[class_id] if 0 <= class_id < len(names) else str(class_id)

    @property
    def class_id(self) -> int:
        return int(self.reconstruction.class_id[0])

    @property
    def azimuth_elevation(self) -> tuple[float, float]:
        a, e = azimuth_elevation(self.reconstruction.camera.rotation)
        return float(a[0]), float(e[0])

    def summary(self) -> dict:
        """A JSON-ready account: camera, class, losses, timings, the prior and feature network that ran."""
        from ..data.category import get_category

        cat = get_category(self.category)
        cam = self.reconstruction.camera
        az, el = self.azimuth_elevation
        hyp = []
        for i in range(len(self.hypothesis_classes)):
            a, e = azimuth_elevation(self.hypothesis_cameras.rotation[i:i + 1])
            row = {"class_id": int(self.hypothesis_classes[i]), "azimuth": float(a[0]), "elevation": float(e[0]),
                   "final_loss": float(self.final_losses[i])}
            if self.hypotheses is not None and self.hypotheses.source == "encoder":
                row.update(encoder_neg_log_prob=float(self.hypotheses.score[i]))
            elif self.hypotheses is not None:
                row.update(search_loss=float(self.hypotheses.score[i]), mask_score=float(self.hypotheses.mask_score[i]))
            hyp.append(row)
        out = {
            "photo": {"source": self.photo.source, "size": list(self.photo.source_size), "notes": self.photo.notes},
            "crop": self.crop.to_dict(),
            "camera": {"azimuth": az, "elevation": el, "scale": float(cam.scale[0]),
                       "translation": cam.translation[0].tolist(), "quaternion_wxyz": cam.rotation[0].tolist(),
                       "estimated": self.hypotheses is not None,
                       "coordinates": "of the square crop (normalized, x right, y up); see crop"},
            "class": {"id": self.class_id, "name": self.class_name(self.class_id) if self.class_id < len(self.class_names) else "",
                      "estimated": self.hypotheses is not None},
            "iou": float(self.reconstruction.iou[0]),
            "phase": self.reconstruction.phase,
            "iou_before_adaptation": (float(self.reconstruction.latent_iou[0])
                                      if self.reconstruction.latent_iou is not None else None),
            "losses": {k: float(v[0]) for k, v in self.reconstruction.terms.items()},
            "hypotheses": hyp, "chosen": self.chosen,
            "timings_s": self.timings,
            "prior": self.prior,
            "feature_extractor": self.reconstruction.feature_extractor or "none",
        }
        if cat.name != "birds":   # (birds' result.json keeps its keys)
            out["category"] = cat.name
        if self.hypotheses is not None:
            scores = self.hypotheses.class_scores
            ok = torch.isfinite(scores)
            out["class"]["scores"] = {self.class_name(c): float(scores[c])
                                      for c in torch.nonzero(ok).squeeze(1).tolist()}
            out["class"]["score_note"] = ("-log p(class) of the encoder (lower is better)" if self.hypotheses.source == "encoder"
                                          else "best search loss per class (lower is better)")
            out["hypotheses_from"] = self.hypotheses.source
        return out


def _class_index(class_id, category: str = "birds") -> Optional[int]:
    """A class given by name (of ``category``'s table, case and ``_`` ignored) or index -> its index."""
    from ..data.category import get_category

    if class_id is None:
        return None
    cat = get_category(category)
    if isinstance(class_id, str) and not class_id.strip().lstrip("-").isdigit():
        table = cat.class_names
        names = [n.lower() for n in table]
        key = class_id.strip().lower().replace("_", " ")
        if key not in names:
            raise ValueError(f"unknown {cat.class_label} {class_id!r}; one of: {', '.join(table)} (or its index)")
        return names.index(key)
    return int(class_id)


def default_hypotheses(category: str = "birds") -> str:
    """Where a photo's hypotheses come from by default: the shipped encoder where it knows the category
    (birds), else the grid search (cars)."""
    from ..data.category import get_category

    return "encoder" if get_category(category).has_encoder else "grid"


def _check_view(azimuth, elevation) -> None:
    """Both or neither of ``azimuth`` and ``elevation``, finite numbers of degrees; ``ValueError`` names the one."""
    if (azimuth is None) != (elevation is None):
        raise ValueError("give both azimuth and elevation (or neither, to estimate the camera)")
    for name, v in (("azimuth", azimuth), ("elevation", elevation)):
        if v is None:
            continue
        try:
            ok = math.isfinite(float(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name} must be a finite number of degrees, got {v!r}")


def reconstruct_photo(
    image: str | Path | Photo,
    mask: Optional[str | Path] = None,
    profile: str = "quick",
    device: str | torch.device = "cpu",
    generator=None,
    class_id: Optional[int | str] = None,
    azimuth: Optional[float] = None,
    elevation: Optional[float] = None,
    search: Optional[ViewSearchConfig] = None,
    config: Optional[InversionConfig] = None,
    seed: int = 0,
    progress: bool = True,
    adapt: bool = True,
    hypotheses: Optional[str] = None,
    box=None,
    category: str = "birds",
) -> PhotoReconstruction:
    """Reconstruct the object of one photo.

    Args:
        image: a photo file (any size and aspect; see :func:`~meshinv_lite.photo.load_photo`) or a
            :class:`~meshinv_lite.photo.Photo`; mask: its silhouette file (``None``: the alpha channel).
        generator: the prior (default: the shipped one, :func:`meshinv_lite.gan.load_shipped_prior`).
        class_id: the species (index or name); ``None`` estimates it.
        azimuth, elevation: the viewpoint in degrees (scale and translation then come from the mask's box);
            ``None`` estimates them (both must be given to skip the search).
        search, config: the hypothesis grid and the inversion schedule (default: the profile's).
        adapt: after the latent search, adapt the chosen reconstruction to what the photo shows
            (:func:`meshinv_lite.inversion.adapt_reconstruction`, with ``config.adapt`` or the default
            :class:`~meshinv_lite.inversion.AdaptConfig`); ``False``: pure latent inversion, the paper's method.
            A photo is almost never one of the prior's 12 species: see ``bench/results/adapt_phase_lite.txt``.
        hypotheses: where camera and species hypotheses come from when not given: ``"encoder"`` (the shipped
            encoder's forward pass, :func:`~meshinv_lite.photo.viewpoint.encoder_hypotheses`; inversion then starts
            from its latent with :meth:`InversionConfig.with_encoder_start` for a guessed camera) or ``"grid"``
            (:func:`~meshinv_lite.photo.viewpoint.search_views` with ``search``, and ``config``'s own start);
            ``None``: :func:`default_hypotheses` of the category (the encoder for birds, the grid for cars: the
            shipped encoder knows SynthBirds only, so ``"encoder"`` with cars is refused).
        box: ``(x0, y0, x1, y1)`` pixels around the bird, for a photo without mask or transparency: the mask is
            then estimated (:func:`~meshinv_lite.photo.segment.estimate_mask`, also without a box).
        category: ``"birds"`` or ``"cars"``: the shipped prior (when ``generator`` is ``None``) and the class table
            ``class_id`` names come from.
    """
    from tqdm.auto import tqdm

    from ..config import check_device
    from ..features.registry import load_feature_extractor
    from ..losses.registry import NEEDS_EXTRACTOR

    device = check_device(device)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    prior_info: dict = {}
    from ..data.category import get_category

    cat = get_category(category)
    _check_view(azimuth, elevation)  # bad input fails first
    cls = _class_index(class_id, cat.name)
    hypotheses = default_hypotheses(cat.name) if hypotheses is None else hypotheses
    if hypotheses not in ("encoder", "grid"):
        raise ValueError(f"hypotheses must be 'encoder' or 'grid', got {hypotheses!r}")
    if hypotheses == "encoder" and not cat.has_encoder:
        raise ValueError(f"the shipped encoder knows SynthBirds only, not {cat.plural}: use the grid search "
                         f"(hypotheses='grid', the command's --hypotheses grid, the default for {cat.plural})")
    photo = image if isinstance(image, Photo) else load_photo(image, mask, estimate=True, box=box)
    if cat.name != "birds" and any("estimated" in n for n in photo.notes):
        photo.notes.append(f"the mask estimate comes from a segmenter trained on SynthBirds, not on {cat.plural}: "
                           "check it (overlay.png) or pass a mask")
    if generator is None:
        from ..gan.prior import load_shipped_prior, shipped_recipe

        recipe = shipped_recipe(cat.name)
        generator, info = load_shipped_prior(device=device, recipe=recipe)
        prior_info = {"file": info.get("file"), "recipe": info.get("recipe", {}).get("name") or recipe.name,
                      "iteration": info.get("iteration")}
    else:
        prior_info = {"file": "(given)", "iteration": None}
    generator = generator.to(device).eval()
    if cls is not None and not 0 <= cls < generator.config.num_classes:
        raise ValueError(f"class {cls} is out of range: the prior knows classes 0..{generator.config.num_classes - 1}")
    cfg = config or InversionConfig.for_profile(profile, category=cat.name)
    searching = azimuth is None or cls is None
    encoder = None
    if searching and hypotheses == "encoder":
        from ..encoder import load_shipped_encoder

        encoder = load_shipped_encoder(device=device)[0]
        if config is None:
            cfg = cfg.with_encoder_start(camera="guessed")
    adapt_cfg = (cfg.adapt or AdaptConfig()) if adapt else None
    cfg = replace(cfg, adapt=None)  # the candidates are compared as the latent search left them; the best is adapted
    search = search or ViewSearchConfig.for_profile(profile)
    img, msk, crop = crop_to_square(photo, cfg.render.image_size)
    img, msk = img[None].to(device), msk[None].to(device)
    template = make_uv_sphere().to(device)
    extractor = None
    if any(name in NEEDS_EXTRACTOR for name, _ in cfg.texture_losses):
        extractor = load_feature_extractor(cfg.features, device=device)
    timings["load"] = time.perf_counter() - t0
    bar = tqdm(total=cfg.total_steps + 1, desc="reconstructing", disable=not progress, leave=False)
    hyp = None
    t1 = time.perf_counter()
    if azimuth is not None and cls is not None:
        with torch.no_grad():
            from ..render.mesh import deform_vertices

            verts = deform_vertices(template, generator(torch.zeros(1, generator.config.latent_dim, device=device),
                                                        torch.tensor([cls], device=device))[1])
            unit = WeakPerspectiveCamera.from_view([azimuth], elevation, 1.0, device=device)
            s, t = fit_box(unit.project(verts), msk[0])
        cams = WeakPerspectiveCamera(s, t, unit.rotation)
        classes = torch.tensor([cls], device=device)
    else:
        view = None if azimuth is None else (float(azimuth), float(elevation))
        if encoder is not None:
            hyp = encoder_hypotheses(encoder, generator, img, msk, template, classes=None if cls is None else [cls],
                                     view=view)
        else:
            hyp = search_views(generator, img, msk, template, cfg, search, classes=None if cls is None else [cls],
                               extractor=extractor, seed=seed, view=view)
        cams, classes = hyp.cameras, hyp.class_id
    timings["search"] = time.perf_counter() - t1
    bar.update(1)
    k = len(cams)
    t2 = time.perf_counter()
    rec = invert(generator, img.expand(k, -1, -1, -1), msk.expand(k, -1, -1, -1), cams, classes, cfg,
                 template=template, extractor=extractor, seed=seed, callback=lambda *a, **kw: bar.update(1),
                 encoder=encoder)
    bar.close()
    timings["inversion"] = time.perf_counter() - t2
    final = rec.terms["total"].detach().cpu()
    best = int(final.argmin())
    chosen = rec[best]
    if adapt_cfg is not None:
        t3 = time.perf_counter()
        chosen = adapt_reconstruction(chosen, img, msk, template, adapt_cfg, cfg.render)
        timings["adaptation"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    return PhotoReconstruction(chosen, photo, crop, img, msk, template, hyp, classes.cpu(), cams.detach().to("cpu"),
                               final, best, {k: round(v, 2) for k, v in timings.items()}, prior_info, candidates=rec,
                               category=cat.name)


#: The files :func:`write_outputs` writes for ``name="reconstruction"`` (the ``reconstruct`` command's).
OUTPUT_FILES = ("reconstruction.obj", "reconstruction.mtl", "reconstruction.png", "reconstruction.glb",
                "turntable.png", "turntable.gif", "overlay.png", "result.json")


class OutputFolderError(ValueError):
    """An output folder that must not be written: a file, or a folder holding files of something else."""


def check_output_folder(out_dir: str | Path) -> None:
    """Refuse, before any work, an output folder the ``reconstruct`` command would have to mix or clobber.

    ``out_dir`` may be missing, empty, or hold an earlier reconstruction (only the files it lists in its
    ``result.json`` and :data:`OUTPUT_FILES`), which is then replaced as a whole. A file, or a folder holding
    anything else, raises :class:`OutputFolderError` naming it.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out} is a file, not a folder: give a folder for the results (it is made if missing)")
    if not out.is_dir():
        above = next((a for a in out.parents if a.exists()), None)
        if above is not None and not above.is_dir():
            raise OutputFolderError(f"{out} cannot be made: {above} is a file, not a folder")
        return
    ours = set(OUTPUT_FILES) | _files_of_earlier_result(out)
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise OutputFolderError(f"{out} holds files that are not an earlier reconstruction ({shown}); its content "
                                "would be replaced: give a new or empty folder")


def _files_of_earlier_result(out: Path) -> set[str]:
    """Names of the files an earlier run's ``result.json`` in ``out`` lists (empty if none can be read)."""
    try:
        files = json.loads((out / "result.json").read_text()).get("files", {})
        return {Path(str(f)).name for f in files.values()}
    except (OSError, ValueError, AttributeError):
        return set()


def write_outputs(result: PhotoReconstruction, out_dir: str | Path, name: str = "reconstruction",
                  views: int = 8, gif: bool = True, final_dir: Optional[str | Path] = None) -> dict:
    """Write into ``out_dir``: ``<name>.obj/.mtl/.png`` and ``.glb``, ``turntable.png`` (and ``.gif``),
    ``overlay.png`` (the photo, its mask outline and the reconstruction's silhouette on top) and, last,
    ``result.json``. Returns ``{what: path}``.

    An earlier ``result.json`` in ``out_dir`` is removed before anything is written, so a folder holding one
    holds a finished result whose files all belong to it. ``final_dir``: where ``out_dir`` will be renamed to
    once written (the ``reconstruct`` command writes into a temporary sibling, :class:`~meshinv_lite.io.StagedDir`);
    the returned paths and those in ``result.json`` name it."""
    import io as _io

    from PIL import Image

    from .. import io, viz
    from ..export import export_reconstruction

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").unlink(missing_ok=True)
    rec, tm = result.reconstruction, result.template
    files = export_reconstruction(rec, 0, out, name, tm)
    png = viz.turntable(rec.vertices[0], tm.faces, tm.uvs, tm.faces_uv, rec.texture[0], views=views, size=160)
    io.atomic_write_bytes(out / "turntable.png", png)
    files["turntable"] = str(out / "turntable.png")
    if gif:
        strip = Image.open(_io.BytesIO(png)).convert("RGB")
        frames = [strip.crop((i * 160, 0, (i + 1) * 160, 160)) for i in range(views)]
        buf = _io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=250, loop=0)
        io.atomic_write_bytes(out / "turntable.gif", buf.getvalue())
        files["gif"] = str(out / "turntable.gif")
    fig = viz.photo_overlay(result)
    files["overlay"] = str(viz.save_figure(fig, out / "overlay.png"))
    files["json"] = str(out / "result.json")
    if final_dir is not None:
        files = {k: str(Path(final_dir) / Path(v).name) for k, v in files.items()}
    io.write_json(out / "result.json", {**result.summary(), "files": dict(files)})
    return files
