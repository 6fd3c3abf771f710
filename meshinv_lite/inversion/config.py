"""How an inversion runs: :class:`InversionConfig` (losses, weights, schedule, latent bound) and its stages."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Optional

from ..config import RenderConfig, get_profile
from ..losses.registry import NEEDS_EXTRACTOR
from .adapt import AdaptConfig

#: The smallest per-stage render size (:attr:`InversionStage.render_size`), in pixels.
MIN_STAGE_RENDER_SIZE = 16

#: ``class_id`` of an image whose class is not known: :func:`invert` chooses it in the initialisation.
UNKNOWN_CLASS = -1


@dataclass(frozen=True)
class InversionStage:
    """``steps`` Adam steps with learning rates for ``z`` and for the camera.

    ``shape_only``: the stage minimizes the silhouette, smoothness, crease and latent terms only (no texture loss,
    so no feature network): a step costs about 40 % of a full one at lite.

    ``features=False``: the stage leaves out the texture losses that need the feature network
    (:data:`~meshinv_lite.losses.NEEDS_EXTRACTOR`, e.g. ``chamfer_feature``) and keeps the pixel-level ones: a 64 px
    step then costs 0.075 s for 8 images instead of 0.102 (2 threads). It is measured, not used: in the fast start's
    30 coarse steps it cost 0.18-0.29 dB of novel-view PSNR against inversion on test 0-23 / test_hard 0-19 (and gained
    0.001-0.003 IoU; ``bench/results/encoder_start_pixel_a_lite.*``): the feature term is what carries the unseen side.

    ``render_size``: the stage renders at this size (pixels, square) instead of the config's ``render.image_size``,
    against the targets resized to it (:func:`~meshinv_lite.inversion.search.resize_targets`): the texture Chamfer,
    feature Chamfer and mask losses all see the coarse render. ``None`` (default): the config's size, exactly as
    before. It must lie in ``[16, render.image_size]``; the reconstruction's final terms and IoU are computed at the
    config's size whatever the stages' sizes.

    Measured at lite (1 thread, 8 images, forward and backward of a full step, ms per image at 128 / 64 / 32 px): the
    generator and render 9.9 / 7.2 / 6.3, the pixel Chamfer 8.9 / 7.2 / 3.9 (1024 points sampled at any size above
    ~40 px, so it hardly shrinks), the feature Chamfer 4.5 / 4.2 / 4.8 (the network sees 64 px either way,
    ``feature_image_size``): 23.3 / 18.6 / 15.0 in all, so a 64 px step costs about 0.8 of a full one, not a quarter.
    In ``bench/encoder_methods.py`` (``bench/results/encoder_start_coarse_*_lite.*``) 24 of the fast start's full steps
    at 64 px lost nothing against the same schedule at 128 px (test 24-47: IoU -0.0050 vs -0.0052, novel PSNR -0.18 vs
    -0.16 dB against inversion) and saved about 12 % of its time; not enough to fit a schedule long enough to close the
    fast start's IoU gap in its speed budget (README "Regression against inversion")."""

    steps: int
    lr_z: float
    lr_camera: float
    shape_only: bool = False
    render_size: Optional[int] = None
    features: bool = True

    def __post_init__(self) -> None:
        if self.render_size is not None and (isinstance(self.render_size, bool) or not isinstance(self.render_size, int)
                                             or self.render_size < MIN_STAGE_RENDER_SIZE):
            raise ValueError(f"InversionStage.render_size must be None (the config's render size) or an int of at least "
                             f"{MIN_STAGE_RENDER_SIZE} pixels, got {self.render_size!r}")


AUTHORS_STAGES = (InversionStage(50, 0.1, 1e-2), InversionStage(50, 0.05, 5e-3),
                  InversionStage(50, 0.01, 1e-3), InversionStage(50, 0.005, 5e-4))


#: The schedule of an inversion that starts from the encoder's guess with the camera given
#: (:meth:`InversionConfig.with_encoder_start`): 10 shape-only steps (silhouette and regularizers, no texture loss: a
#: step costs about a third of a full one), 30 full steps at the authors' first learning rates rendered at half the
#: profile's size (:attr:`InversionStage.render_size`; :meth:`~InversionConfig.with_encoder_start` sets it, 64 px at
#: lite), then 16 at a fifth of them at full size (56 steps, no early stopping), with half lite's pixel-Chamfer points
#: (:data:`ENCODER_START_POINTS`). Chosen on 24 test + 20 test_hard lite images among 4 cheaper-step schedules
#: (``bench/results/encoder_start_cheap_a_lite.*``). It replaced 10 shape-only + 18 + 10 full steps at 1024 points,
#: which was 3x as fast but stayed 0.003-0.007 IoU behind inversion on fresh test images. Without the shape stage
#: (20 + 15 full steps) IoU stayed 0.010-0.014 behind.
ENCODER_START_STAGES = (InversionStage(10, 0.1, 1e-2, shape_only=True), InversionStage(30, 0.1, 1e-2),
                        InversionStage(16, 0.02, 2e-3))

#: Pixel-Chamfer points per step of the given-camera fast start (lite's 1024 halved: the steps cost less, so more fit
#: in its time).
ENCODER_START_POINTS = 512

#: The given-camera fast start's weight on the feature-level texture losses, as a multiple of the profile's (lite:
#: 0.04 -> 0.08), and how many starting latents it scores: the encoder's latent alone, no draws around it (the
#: encoder's latent is the prior's mean, README "Regression against inversion"; the draws cost time and, on the images
#: the choice was made on, lost novel-view PSNR). The feature term is what carries the unseen side: without it in the
#: coarse stage novel-view PSNR fell 0.18-0.29 dB. Chosen on test 0-23 / test_hard 0-19
#: (``bench/results/encoder_start_feature_{a,b}_lite.*``, ``encoder_start_one_draw_{a,b}_lite.*``: novel-view PSNR
#: against inversion -0.11 / -0.12 dB with the profile's weight and 4 draws, -0.02 / +0.01 dB with these), then run on
#: six sets of images no choice had seen, where it held the issue-32 targets on each (README).
ENCODER_START_FEATURE_SCALE = 2.0
ENCODER_START_CANDIDATES = 1

#: The same for a camera that is itself a guess (a photo's, from the encoder): half the learning rates, so the camera
#: stays near the encoder's view. On 24 lite test photos (``bench/camera_estimation.py``) it gave median azimuth error
#: 5.4 degrees (88 % within 20) and novel-view PSNR -0.10 dB against the given-camera inversion, in 3.8 s per image;
#: :data:`ENCODER_START_STAGES` of the time (20 + 15 full steps at these rates doubled): 6.0 degrees (71 %), -0.48 dB,
#: 4.4 s.
ENCODER_START_STAGES_GUESSED_CAMERA = (InversionStage(20, 0.05, 5e-3), InversionStage(15, 0.01, 1e-3))


@dataclass(frozen=True)
class InversionConfig:
    """What to minimize and how (defaults: the authors' schedule and weights, DESIGN.md section 4).

    ``texture_losses``: ``(name, weight)`` pairs from :data:`meshinv_lite.losses.TEXTURE_LOSSES`;
    ``mask_loss``: a name from :data:`meshinv_lite.losses.MASK_LOSSES`.
    ``w_crease``: weight of :func:`~meshinv_lite.losses.crease_loss`, which penalizes only folded face pairs.
    ``features``: the network of the feature-level losses. ``"auto"``: ImageNet VGG-19 ``relu3_1`` when its
    weights are on disk, else the shipped in-domain network (:mod:`meshinv_lite.features.in_domain`, "in-domain
    features (SynthBirds-trained)"); ``"vgg19"`` without weights is the random OFFLINE FALLBACK.
    The history's ``z_norm`` is the mean ``|z| / sqrt(latent_dim)`` (1 +- 0.09 for samples of ``N(0, I)``):
    with the shipped prior, the Chamfer mask term and the authors' ``w_latent`` it ends near 0.25-0.45, pulled
    towards the centre; a drift outwards shows there first (with the soft-IoU mask term at the authors' weight and
    no bound it reaches 1.56 at lite). ``latent_shell`` bounds it instead (lite: 1.27, without the pull).
    """

    texture_losses: tuple[tuple[str, float], ...] = (("chamfer", 1.0), ("chamfer_feature", 0.04))
    mask_loss: str = "chamfer"
    w_mask: float = 10.0
    w_smooth: float = 5e-5
    w_crease: float = 0.0
    w_latent: float = 0.05
    num_points: int = 8192
    mask_points: Optional[int] = None  # foreground pixels sampled for the Chamfer mask loss (None: all)
    two_sided: bool = True
    feature_image_size: Optional[int] = None  # images are resized to this before the CNN (None: render size)
    features: str = "auto"  # the feature network (meshinv_lite.features.EXTRACTORS): "auto", "synthbirds_features", "vgg19"
    init_candidates: int = 500
    init_batch: int = 64
    stages: tuple[InversionStage, ...] = AUTHORS_STAGES
    refine_camera: bool = True
    betas: tuple[float, float] = (0.0, 0.99)
    render: RenderConfig = field(default_factory=lambda: RenderConfig(image_size=256))
    # Early stopping (None: every stage runs all its steps). A stage ends once it has run 2 * stop_window steps
    # and the batch-mean loss averaged over its last stop_window steps is less than stop_tol (relative) below
    # the average of the stop_window steps before; the next stage (lower learning rate) starts from there.
    stop_tol: Optional[float] = None
    stop_window: int = 10
    # A hard bound on the latent instead of (or beside) the pull of w_latent: after every step, z is scaled back
    # onto |z| / sqrt(latent_dim) <= latent_shell where it lies outside (None: no bound). The prior's samples lie
    # at 1 +- 0.09 (latent_dim 64), so 1.27 is three standard deviations out.
    latent_shell: Optional[float] = None
    # The second phase after the latent search (:mod:`meshinv_lite.inversion.adapt`): a silhouette-fitted residual
    # on the shape and the photo's visible texels over G's texture. None: pure latent inversion (the paper's method).
    adapt: Optional[AdaptConfig] = None
    # Where the search starts. "random": the best of init_candidates draws of N(0, I) (the authors'). "encoder": the
    # shipped encoder's latent (:mod:`meshinv_lite.encoder`) and init_candidates - 1 draws around it at init_spread,
    # and, for an image whose class is unknown, only the encoder's encoder_classes most likely classes (instead of
    # all). The encoder's latent is close to the prior's mean (its species tells more than its latent: see
    # EncoderRecipe.z_steps), so the draws around it keep the prior's own spread by default.
    init: str = "random"
    init_spread: float = 1.0
    encoder_classes: int = 2

    def __post_init__(self) -> None:
        if self.init not in ("random", "encoder"):
            raise ValueError(f"InversionConfig.init must be 'random' (best of N draws) or 'encoder' (start from the "
                             f"shipped encoder's prediction), got {self.init!r}")
        if self.encoder_classes < 1 or self.init_spread < 0:
            raise ValueError(f"InversionConfig.encoder_classes must be >= 1 and init_spread >= 0, got "
                             f"{self.encoder_classes} and {self.init_spread}")
        if self.adapt is not None and not isinstance(self.adapt, AdaptConfig):
            raise TypeError(f"InversionConfig.adapt must be an AdaptConfig or None, got {type(self.adapt).__name__}")
        too_big = [s.render_size for s in self.stages if s.render_size is not None and s.render_size > self.render.image_size]
        if too_big:
            raise ValueError(f"InversionStage.render_size must not exceed the config's render size "
                             f"({self.render.image_size} px): a stage renders at most at full size, got {too_big}")
        if self.latent_shell is not None and not self.latent_shell > 0:
            raise ValueError(f"InversionConfig.latent_shell must be a positive |z| / sqrt(latent_dim) bound (e.g. 1.27) or "
                             f"None for no bound, got {self.latent_shell}")

    @classmethod
    def for_profile(cls, name: str, category: str = "birds", **overrides) -> "InversionConfig":
        """quick: few steps and points; lite: the full 200-step schedule at 128 px; paper: the authors'.

        ``category``: a category other than birds (``"cars"``) uses its own in-domain loss network
        (``features=Category.loss_features``, e.g. ``synthcars_features``) unless ``features`` is given; birds keep
        ``"auto"`` (ImageNet VGG-19 where its weights are on disk, else ``synthbirds_features``).

        quick and paper match the silhouette with the authors' Chamfer mask loss; lite with a light soft IoU on the
        rendered silhouette (``mask_loss="iou"``, ``w_mask=0.5``; its last paragraph below). Without a bound on the
        latent the soft IoU leaves the prior (``bench/mask_loss_ablation.py``, lite, authors' latent pull: IoU
        +0.075 on 24/24 test images, but ``|z| / sqrt(64)`` 1.56 instead of 0.25, the prior's samples lying at
        1 +- 0.09, and 2.7x the true birds' folding); inside lite's shell it cannot.

        lite stops each stage early (``stop_tol=0.005``, window 10). Measured (``bench/inversion_variants.py``,
        shipped prior, paired against the full 200 steps on 24 test + 20 test_hard images): 81 / 86 steps on
        average, 1.9x faster, and novel views **better**, not worse: PSNR +0.22 dB [+0.12, +0.32] (19/24 images),
        3D Chamfer -0.0034 [-0.0052, -0.0015] (20/24), perceptual distance -0.009 (19/24); input-view IoU
        -0.0025 [-0.006, +0.001] and FD in-domain unchanged within their intervals. The last steps at a low
        learning rate fit the input view's pixels at the expense of the unseen side. quick's 10-step stages are
        too short to judge (it needs 20 steps), and paper keeps the authors' full schedule (not measured there).

        lite weighs the Chamfer mask 6x the authors' (``w_mask=60``) and draws 32 initial candidates, not 64.
        Measured (``bench/inversion_variants.py``, same images, paired against ``w_mask=10`` with 64 candidates):
        test IoU +0.038 [+0.029, +0.049] (24/24 images), test_hard +0.032 (19/20); novel-view PSNR +0.36 dB
        [+0.08, +0.66]; 3D Chamfer -0.0026 (test), -0.0044 (test_hard); FD in-domain 10 unchanged on test
        (-0.0009, interval across 0) and +0.003 on test_hard; folded face pairs 0.0071 -> 0.0078 (true birds
        0.0040; test_hard 0.0089); 8 % faster. Our masks are exact, so a silhouette term can be trusted more than
        on CUB, whose masks the authors' weight was set for. The candidates: 32 instead of 64 changed no figure
        beyond its interval. ``w_crease=10`` on top would fold less than the true birds (0.0020) but gives back
        part of the gain (IoU -0.008, PSNR -0.25 dB on test; ``bench/results/mask_weight_lite.*``).

        lite keeps ``z`` inside the prior's shell instead of pulling it towards the centre (``w_latent=0``,
        ``latent_shell=1.27``: the samples of ``N(0, I_64)`` lie at ``|z| / sqrt(64) = 1 +- 0.09``, and the centre is
        the one place they never are) and adds a small crease penalty (``w_crease=2``). Measured
        (``bench/results/latent_shell_lite.*``, paired against ``w_latent=0.05`` without bound or crease on the same
        24 test + 20 test_hard images): test IoU +0.012 [+0.007, +0.016] (20/24), novel-view PSNR +0.25 dB
        [+0.03, +0.46] (17/24), 3D Chamfer -0.002, FD in-domain 10 -0.0035 (interval across 0); folded face pairs
        0.0078 -> 0.0030 (true birds 0.0041; 23/24 images fold less); test_hard IoU +0.005, PSNR +0.06 dB, folding
        0.0092 -> 0.0046. The bound alone (no crease penalty) gains a little more IoU (+0.014) but folds more
        (0.0088); a crease weight of 5 folds less (0.0019) and gives most of the gain back.

        Inside the shell, lite matches the silhouette with the soft IoU at weight 0.5 instead of the Chamfer mask
        at 60. Measured (``bench/results/mask_iou_lite.*``, paired against the Chamfer mask 60 with everything else
        as above, same 24 test + 20 test_hard images): test IoU +0.012 [+0.004, +0.020] (18/24), realism unchanged
        within its intervals (novel-view PSNR -0.09 dB, perceptual distance +0.002, FD in-domain 10 +0.001,
        folding 0.0030 -> 0.0034); on test_hard the unseen side gains most: 3D Chamfer -0.014 [-0.026, -0.005],
        F-score +0.092, novel-view PSNR +0.59 dB [+0.25, +0.99], perceptual distance -0.029, folding 0.0046 ->
        0.0034, IoU +0.017. The vertex Chamfer pulls every vertex into the visible pieces of a mask that a twig
        cuts; the soft IoU only scores the outline the mesh casts. Heavier soft-IoU weights buy more IoU with
        realism: weight 1, test IoU +0.018 and FD in-domain 10 +0.006 (interval above 0); weight 60, +0.026 and
        FD in-domain 10 +0.024, folding 2.7x; weight 0.25 gains no IoU. Checked after the choice on 40 test + 20
        test_hard images it never saw (``mask_iou_heldout_lite.json``): test IoU +0.017 [+0.012, +0.021] (35/40),
        realism tied; test_hard PSNR +0.64 dB, 3D Chamfer -0.023. On 24 unseen-species images the Chamfer mask keeps
        IoU +0.014 (interval across 0) and the soft IoU a better perceptual distance (-0.027, 19/24).

        Every profile is pure latent inversion (``adapt=None``), the paper's method, which notebook 04 teaches. Pass
        ``adapt=AdaptConfig()`` for the second phase that keeps what the photo shows where the prior cannot make it
        (:mod:`meshinv_lite.inversion.adapt`; ``cli reconstruct`` uses it by default). Measured at lite
        (``bench/results/adapt_phase_lite.*``, paired on the same 24 test, 20 test_hard, 24 test_unseen and 24
        hue-rotated images): IoU 0.907 -> 0.972, 0.800 -> 0.889, 0.813 -> 0.934; input-view PSNR +4 to +8 dB;
        novel-view PSNR +0.3 to +1.2 dB; FD in-domain 10 on test_unseen 0.237 -> 0.065; 0.25-0.35 s per image.
        """
        prof = get_profile(name)
        if prof.name == "quick":
            base = cls(num_points=512, init_candidates=16, init_batch=16, render=prof.render,
                       stages=tuple(InversionStage(10, s.lr_z, s.lr_camera) for s in AUTHORS_STAGES))
        elif prof.name == "lite":
            base = cls(num_points=1024, mask_points=2048, init_candidates=32, init_batch=32, render=prof.render,
                       feature_image_size=64, stop_tol=0.005, stop_window=10, mask_loss="iou", w_mask=0.5,
                       w_latent=0.0, latent_shell=1.27, w_crease=2.0)
        else:
            base = cls(render=prof.render)
        if category != "birds":
            from ..data.category import get_category

            overrides.setdefault("features", get_category(category).loss_features)
        return replace(base, **overrides)

    def with_encoder_start(self, camera: str = "given") -> "InversionConfig":
        """A copy that starts from the shipped encoder's latent and runs a short schedule in full (no early stopping).
        For a given camera (the fast start measured by ``bench/encoder_methods.py``): the encoder's latent alone
        (:data:`ENCODER_START_CANDIDATES`), :data:`ENCODER_START_STAGES` (a shape-only stage, a full one rendered at
        half the render size when that is at least 64 px, a full one at full size), at most
        :data:`ENCODER_START_POINTS` pixel-Chamfer points and the feature-level losses' weights times
        :data:`ENCODER_START_FEATURE_SCALE`; for ``camera="guessed"`` (a photo's camera from the encoder): the
        encoder's latent and 3 draws around it, :data:`ENCODER_START_STAGES_GUESSED_CAMERA`, the profile's points and
        weights."""
        if camera not in ("given", "guessed"):
            raise ValueError(f"camera must be 'given' or 'guessed', got {camera!r}")
        fast = replace(self, init="encoder", stop_tol=None)
        if camera == "guessed":
            return replace(fast, init_candidates=4, init_batch=4, stages=ENCODER_START_STAGES_GUESSED_CAMERA)
        half = self.render.image_size // 2     # the coarse stage: half the render size, not below 64 px (32 loses IoU)
        shape, coarse, fine = ENCODER_START_STAGES
        coarse = replace(coarse, render_size=half if half >= 64 else None)
        texture = tuple((name, w * ENCODER_START_FEATURE_SCALE if name in NEEDS_EXTRACTOR else w)
                        for name, w in self.texture_losses)
        n = ENCODER_START_CANDIDATES
        # the profile's init_batch: one draw per image leaves few rows, scored in as few calls as the profile allows
        # (for given classes the same result as one call per row: nothing to choose, and the point samples consume the
        # same stream; for an unknown class the choice between the encoder's two species follows other point samples)
        return replace(fast, init_candidates=n, stages=(shape, coarse, fine), texture_losses=texture,
                       num_points=min(self.num_points, ENCODER_START_POINTS))

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def with_losses(self, texture: str | tuple[tuple[str, float], ...], mask: Optional[str] = None) -> "InversionConfig":
        """A copy with other losses: ``texture`` a name (weight 1) or ``(name, weight)`` pairs."""
        tex = ((texture, 1.0),) if isinstance(texture, str) else tuple(texture)
        return replace(self, texture_losses=tex, mask_loss=mask or self.mask_loss)

    def to_dict(self) -> dict:
        """The settings as a dict (for signatures of saved results). Settings at their "off" value (no early stopping,
        no shell, no adaptation, the random start, full stages) are left out: they change nothing then, and results
        saved before they existed still match."""
        d = asdict(self)
        if self.stop_tol is None:
            d.pop("stop_tol"), d.pop("stop_window")
        if self.latent_shell is None:
            d.pop("latent_shell")
        if self.adapt is None:
            d.pop("adapt")
        if self.init == "random":
            d.pop("init"), d.pop("init_spread"), d.pop("encoder_classes")
        for stage in d["stages"]:
            if not stage["shape_only"]:
                stage.pop("shape_only")
            if stage["render_size"] is None:
                stage.pop("render_size")
            if stage["features"]:
                stage.pop("features")
        return d
