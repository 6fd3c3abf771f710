"""Command-line entry points for the heavy steps, single-process or under ``torchrun``.

The notebooks call the same functions one process at a time; these commands are for scaling out::

    # GAN pretraining, one process per GPU (DistributedDataParallel over nccl)
    torchrun --standalone --nproc_per_node 4 -m meshinv_lite.cli pretrain --profile paper --device cuda --data-dir data

    # two CPU processes talking over gloo
    torchrun --standalone --nproc_per_node 2 -m meshinv_lite.cli pretrain --profile quick --data-dir data

    # evaluation of a split, batches dealt to the ranks, results merged by rank 0
    torchrun --standalone --nproc_per_node 2 -m meshinv_lite.cli evaluate --profile quick --data-dir data --split test

    # your own photo (mask optional when the PNG has an alpha channel): camera and species are estimated
    python -m meshinv_lite.cli reconstruct photo.png --mask mask.png --out out/
    python -m meshinv_lite.cli reconstruct car.png --mask car_mask.png --category cars --out out/   # grid search

    # rebuild the prior that ships in meshinv_lite/priors/ (one process; about 2.5 h on 2 CPU cores)
    python -m meshinv_lite.cli build-prior --data-dir data

    # rebuild the in-domain feature networks (loss and metric) that ship beside it (about 15 min)
    python -m meshinv_lite.cli build-features --data-dir data

    # rebuild the image encoder and mask segmenter that ship beside it (about 30 min; needs the shipped prior)
    python -m meshinv_lite.cli build-encoder --data-dir data

    # convert the authors' pretrained GAN once (MeshInversion's CUB model, or ConvMesh's CUB / PASCAL3D+ ones)
    python -m meshinv_lite.cli import-weights checkpoints_gan/pretrained/checkpoint_latest.pth --from meshinversion

Without ``torchrun`` (``python -m meshinv_lite.cli ...``) they run as one process. Rank 0 alone builds
the dataset and writes shared files; pseudo ground truth, training batches and evaluation batches are
split over the ranks. Each command ends with one ``[rank r/N] ...`` line per process and writes a JSON
report (rank 0).

A user's mistake (a bad argument, a missing or damaged file, a split that does not exist, an ``--out`` that
cannot be written) ends the command with exit status 2 and one ``error: ...`` line naming the argument or
file and what to do, before any work where it can be known then (``MESHINV_TRACEBACK=1`` shows the
traceback instead, for a bug report); Ctrl-C ends it with one line and status 130. ``reconstruct`` writes
its folder whole: into a hidden sibling renamed into place at the end, so ``--out`` holds either the
earlier result or the new one, never a mix, and nothing after an interruption.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from ._checks import fid_views, finite_float, int_at_least
from .distributed import DistContext, init_distributed, shutdown
from .config import CATEGORY_NAMES
from .io import write_json

_THREADS_HELP = "torch CPU threads (default: on <= 2 cores both when idle, else 1; else torch's)"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", choices=["quick", "lite", "paper"])
    p.add_argument("--data-dir", default="data", help="folder holding synthbirds_<profile> (made if missing)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun: GPU number LOCAL_RANK)")
    p.add_argument("--camera", default="noisy", choices=["noisy", "exact"])
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--threads", type=int_at_least(1), default=None,
                   help="torch CPU threads per process (default: on <= 2 cores both when idle, else 1; else torch's; "
                        "torchrun sets 1 per process)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m meshinv_lite.cli", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="build data + pseudo-GT if missing, then train the GAN prior")
    _common(p)
    p.add_argument("--iterations", type=int_at_least(1), default=None,
                   help="train up to this many iterations (default: profile)")
    p.add_argument("--checkpoint-dir", default=None, help="default: <dataset>/gan_<camera>[_noimgD]")
    p.add_argument("--no-image-discriminator", action="store_true")
    p.add_argument("--no-resume", action="store_true", help="ignore latest.pt in the checkpoint folder")
    p.add_argument("--train-images", type=int_at_least(1), default=None,
                   help="training images that get pseudo ground truth (default: the profile's; lite 1000, "
                        "quick all); shards already made for the same images are reused")
    e = sub.add_parser("evaluate", help="invert and score a split with a trained prior")
    _common(e)
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=int_at_least(1), default=None, help="first N images of the split")
    e.add_argument("--batch-size", type=int_at_least(1), default=8)
    e.add_argument("--out-dir", default=None, help="default: outputs/<profile>/eval_<split>")
    e.add_argument("--checkpoint", default=None, help="GAN checkpoint (default: the profile's latest.pt)")
    e.add_argument("--weights", default=None,
                   help="an imported authors' generator (the .pt of import-weights) instead of --checkpoint")
    e.add_argument("--dataset", default=None,
                   help="a converted dataset folder (e.g. CUB from data_scripts/prepare_cub.py) instead of SynthBirds")
    e.add_argument("--fid-stats", default=None,
                   help="precomputed Inception statistics of the real images for FID_10/12 (MeshInversion's "
                        "cache/precomputed_fid_299x299_testval.npz); used when the Inception weights are found")
    e.add_argument("--views", type=fid_views, default="1,10,12",
                   help="FID_k to compute, from 1, 10, 12, e.g. '1,10,12' or '' for none")
    e.add_argument("--force", action="store_true", help="discard earlier results made with other settings")
    b = sub.add_parser("build-prior", help="rebuild the shipped prior (meshinv_lite/priors/) from scratch, resumably")
    b.add_argument("--data-dir", default="data", help="its dataset, pseudo-GT and checkpoints go to <data-dir>/prior_<name>/")
    b.add_argument("--device", default="cpu")
    b.add_argument("--threads", type=int_at_least(1), default=None, help=_THREADS_HELP)
    b.add_argument("--out-dir", default=None, help="where the .pt and .json go (default: meshinv_lite/priors)")
    b.add_argument("--iterations", type=int_at_least(1), default=None,
                   help="stop the GAN early (a dry run; the provenance then says the file is incomplete)")
    b.add_argument("--category", default="birds", choices=CATEGORY_NAMES,
                   help="which shipped prior: synthbirds_lite (birds) or synthcars_lite (cars)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    f = sub.add_parser("build-features", help="rebuild the in-domain feature networks (meshinv_lite/priors/) from scratch")
    f.add_argument("--data-dir", default="data", help="SynthBirds lite and the checkpoints go to <data-dir>/")
    f.add_argument("--device", default="cpu")
    f.add_argument("--threads", type=int_at_least(1), default=None, help=_THREADS_HELP)
    f.add_argument("--out-dir", default=None, help="where the .pt and .json go (default: meshinv_lite/priors)")
    f.add_argument("--only", default=None, choices=["synthbirds_features", "synthbirds_eval", "synthcars_features",
                                                    "synthcars_eval"],
                   help="rebuild one of the networks")
    f.add_argument("--category", default="birds", choices=CATEGORY_NAMES,
                   help="whose pair: synthbirds_features/_eval (birds) or synthcars_features/_eval (cars)")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    en = sub.add_parser("build-encoder", help="rebuild the image encoder and mask segmenter (meshinv_lite/priors/)")
    en.add_argument("--data-dir", default="data", help="SynthBirds lite and the checkpoints go to <data-dir>/")
    en.add_argument("--device", default="cpu")
    en.add_argument("--threads", type=int_at_least(1), default=None, help=_THREADS_HELP)
    en.add_argument("--out-dir", default=None, help="where the .pt and .json go (default: meshinv_lite/priors)")
    en.add_argument("--quiet", action="store_true", help="no progress bars")
    iw = sub.add_parser("import-weights", help="convert the authors' pretrained GAN (MeshInversion or ConvMesh) into "
                                                "this package's format, once")
    iw.add_argument("checkpoint", help="the authors' checkpoint_latest.pth")
    iw.add_argument("--from", dest="source", required=True, choices=["meshinversion", "convmesh"],
                    help="whose checkpoint it is (MeshInversion's CUB GAN or one of ConvMesh's CUB / PASCAL3D+ GANs)")
    iw.add_argument("--out", default=None, help="the converted file (.pt; default: imported/<source>_<checkpoint "
                                                "folder>.pt), with a provenance .json beside it")
    iw.add_argument("--rings", type=int, default=None, choices=[16, 31],
                    help="the template, when the checkpoint does not name it (16: CUB, 31: PASCAL3D+)")
    iw.add_argument("--device", default="cpu")
    iw.add_argument("--threads", type=int_at_least(1), default=None, help=_THREADS_HELP)
    r = sub.add_parser("reconstruct", help="one photo (+ mask) in; camera and species estimated; textured mesh out")
    r.add_argument("image", help="the photo: PNG/JPEG of any size; a PNG with transparency needs no mask")
    r.add_argument("--mask", default=None, help="the silhouette: white bird on black (default: the photo's alpha; "
                                                   "without either, estimated by the shipped segmenter)")
    r.add_argument("--box", type=finite_float, nargs=4, default=None, metavar=("X0", "Y0", "X1", "Y1"),
                   help="pixels around the bird, to guide the mask estimate of a photo without mask or transparency")
    r.add_argument("--category", default="birds", choices=CATEGORY_NAMES,
                   help="what the photo shows: birds (the SynthBirds prior, default) or cars (the SynthCars prior)")
    r.add_argument("--hypotheses", default=None, choices=["encoder", "grid"],
                   help="camera and class hypotheses from the shipped encoder (birds' default, fast; it knows "
                        "SynthBirds only) or the grid search (cars' default and only choice)")
    r.add_argument("--out", default="outputs/reconstruct",
                   help="folder for the mesh, pictures and result.json: new, empty, or an earlier result (replaced "
                        "as a whole)")
    r.add_argument("--profile", default="quick", choices=["quick", "lite", "paper"])
    r.add_argument("--device", default="cpu")
    r.add_argument("--threads", type=int_at_least(1), default=None,
                   help="torch CPU threads (default: on <= 2 cores both when idle, else 1)")
    r.add_argument("--species", default=None,
                   help="species (birds) or body type (cars), by name or class index (default: estimated)")
    r.add_argument("--azimuth", type=finite_float, default=None,
                   help="viewpoint, degrees (with --elevation; default: estimated)")
    r.add_argument("--elevation", type=finite_float, default=None)
    r.add_argument("--seed", type=int_at_least(0), default=0)
    r.add_argument("--no-adapt", action="store_true",
                   help="pure latent inversion (the paper's method): skip the adaptation phase that keeps what the photo "
                        "shows where the prior cannot make it")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _say(ctx: DistContext, text: str) -> None:
    # one write per line, so the lines of ranks sharing a terminal do not interleave
    sys.stdout.write(f"[rank {ctx.rank}/{ctx.world_size}] {text}\n")
    sys.stdout.flush()


def pretrain(args: argparse.Namespace, ctx: DistContext) -> int:
    from .evaluation.store import generator_fingerprint
    from .gan.config import PretrainConfig
    from .gan.inputs import TrainingData, build_training_inputs, gan_dir
    from .gan.trainer import GANTrainer

    progress = not args.quiet
    root = build_training_inputs(args.data_dir, args.profile, args.camera, device=ctx.device, seed=args.seed,
                                 progress=progress, dist=ctx, train_images=args.train_images)
    image_d = not args.no_image_discriminator
    overrides = {"iterations": args.iterations} if args.iterations is not None else {}
    cfg = PretrainConfig.for_profile(args.profile, image_discriminator=image_d, seed=args.seed, **overrides)
    ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else gan_dir(root, args.camera, image_d)
    trainer = GANTrainer(cfg, TrainingData.from_dataset(root, "train", args.camera), device=ctx.device,
                         checkpoint_dir=ckpt_dir, dist=ctx)
    result = trainer.train(progress=progress, resume=not args.no_resume)
    # Every rank must end with the same networks: DDP averaged the gradients of G and of both discriminators.
    nets = {"G_ema": trainer.G_ema, "D_uv": trainer.D_uv, "D_img": trainer.D_img}
    prints = ctx.all_gather_object({k: generator_fingerprint(m) for k, m in nets.items() if m is not None})
    in_sync = all(p == prints[0] for p in prints)
    _say(ctx, f"iterations={result['iterations']} checkpoints_written={result['checkpoints_written']} "
              f"local_batch={trainer.local_batch} " + " ".join(f"{k}={v}" for k, v in prints[ctx.rank].items()))
    if ctx.is_main:
        report = {"command": "pretrain", "profile": args.profile, "num_processes": ctx.world_size,
                  "backend": ctx.backend, "device": str(ctx.device), "global_batch": cfg.batch_size,
                  "local_batch": trainer.local_batch, "ranks_in_sync": in_sync, "rank_fingerprints": prints,
                  "checkpoint": str(ckpt_dir / "latest.pt"), **result,
                  "final_losses": {k: v[-1] for k, v in trainer.history.items() if v}}
        write_json(ckpt_dir / "pretrain_run.json", report)
        print(f"checkpoint: {ckpt_dir / 'latest.pt'}  ({result['seconds']:.1f} s, ranks in sync: {in_sync})")
    return 0 if in_sync else 2


def evaluate(args: argparse.Namespace, ctx: DistContext) -> int:
    from .data.dataset import read_split
    from .data.synthbirds import synthbirds_dir
    from .evaluation.evaluate import evaluate_split
    from .gan.checkpoint import load_generator
    from .gan.inputs import gan_dir
    from .inversion.config import InversionConfig

    if args.weights and args.checkpoint:
        raise UserError("give --weights (an imported authors' generator) or --checkpoint (a GAN of this package), not both")
    root = Path(args.dataset) if args.dataset else synthbirds_dir(args.data_dir, args.profile)
    read_split(root, args.split, check_files=False)  # a split that is not there: refused before anything loads
    stats = None
    if args.fid_stats:
        from .data.cub_meshinversion import read_fid_stats

        stats = read_fid_stats(args.fid_stats)
    if args.weights:
        from .gan.imported import load_imported_generator

        G, _ = load_imported_generator(args.weights, device=ctx.device)
    else:
        ckpt = Path(args.checkpoint) if args.checkpoint else gan_dir(root, args.camera) / "latest.pt"
        if not ckpt.exists():
            raise FileNotFoundError(f"no GAN checkpoint at {ckpt}: train one first (python -m meshinv_lite.cli pretrain "
                                    f"--profile {args.profile} --data-dir {args.data_dir}) or pass --checkpoint")
        G, _ = load_generator(ckpt, device=ctx.device)
    out_dir = Path(args.out_dir) if args.out_dir else Path("outputs", args.profile, f"eval_{args.split}")
    m = evaluate_split(G, root, args.split, InversionConfig.for_profile(args.profile), out_dir, camera=args.camera,
                       limit=args.limit, batch_size=args.batch_size, progress=not args.quiet, seed=args.seed,
                       views=args.views, force=args.force, dist=ctx, fid_reference_stats=stats)
    _say(ctx, f"images={m['num_images']} newly_inverted={m['newly_inverted']} iou={m['iou']:.4f}")
    if ctx.is_main:
        print(f"results: {out_dir} (per_image.csv, metrics.json)")
    return 0


def build_prior(args: argparse.Namespace) -> int:
    from .artifacts import build_prior as build
    from .gan.prior import shipped_recipe

    t0 = time.perf_counter()
    p = build(args.data_dir, recipe=shipped_recipe(args.category), device=args.device, out_dir=args.out_dir, progress=not args.quiet, iterations=args.iterations)
    q = p["quality"]["inversion_probe_val"]
    print(f"done in {(time.perf_counter() - t0) / 60:.1f} min this run "
          f"({p['wall_time']['total_hours']:.2f} h of work in all); inversion probe on {q['num_images']} val images: "
          f"IoU {q['iou']:.3f}, PSNR novel {q['psnr_novel']:.2f} dB, 3D Chamfer {q['chamfer_3d']:.4f}")
    return 0


def build_features(args: argparse.Namespace) -> int:
    from .features.in_domain import BY_CATEGORY, RECIPES
    from .features.in_domain_training import build_feature_net

    for recipe in ([RECIPES[args.only]] if args.only else BY_CATEGORY[args.category]):
        info = build_feature_net(recipe, args.data_dir, device=args.device, out_dir=args.out_dir, progress=not args.quiet)
        q = info["val_quality"]
        print(f"{recipe.name} ({info['role']}): {info['wall_seconds'] / 60:.1f} min; on {q['num_images']} val images: species "
              f"{q['species_accuracy']:.1%}, UV error u {q['u_deg']:.1f} deg / v {q['v_deg']:.1f} deg, normal "
              f"{q['normal_deg']:.1f} deg, colour {q['colour_mae']:.3f}")
    return 0


def build_encoder(args: argparse.Namespace) -> int:
    from .encoder.training import build_encoder as build

    info = build(args.data_dir, device=args.device, out_dir=args.out_dir, progress=not args.quiet)
    v = info["validation"]
    w = info["wall_time"]
    print(f"{info['file']}: {(w['encoder_seconds'] + w['segmenter_seconds']) / 60:.1f} min of training; on {v['images']} val images: species "
          f"{v['species_accuracy']:.1%}, azimuth error median {v['azimuth_error_median_deg']:.1f} deg, mask IoU "
          f"{v['mask_iou_mean']:.3f}")
    return 0


def import_weights(args: argparse.Namespace) -> int:
    from .gan.imported import import_authors_weights

    src = Path(args.checkpoint)
    out = Path(args.out) if args.out else Path("imported", f"{args.source}_{src.resolve().parent.name or 'generator'}.pt")
    info = import_authors_weights(src, args.source, out, rings=args.rings)
    c = info["config"]
    cond = (f"{c['shape_classes']} classes" + (f" x {c['color_classes']} colours" if c["color_classes"] else "")
            if c["shape_classes"] else "unconditional")
    print(f"{out}: the authors' generator ({info['source']['entry']}), {info['parameters'] / 1e6:.2f} M parameters, "
          f"{cond}, {c['texture_size']} px textures, {c['rings']}-ring template; provenance in {out.with_suffix('.json')}")
    return 0


def reconstruct(args: argparse.Namespace) -> int:
    """Check ``--out`` (and make its temporary sibling: the writability check), invert, write the folder whole."""
    from .io import StagedDir
    from .photo import reconstruct as rp

    out = Path(args.out)
    if args.hypotheses == "encoder" and args.category != "birds":
        raise UserError(f"--hypotheses encoder: the shipped encoder knows SynthBirds only, not {args.category}; "
                        f"leave --hypotheses out (the grid search is the default for {args.category}) or pass "
                        "--hypotheses grid")
    try:
        rp.check_output_folder(out)
        staged = StagedDir(out)
    except rp.OutputFolderError as e:
        raise UserError(f"--out {e}") from None
    except OSError as e:
        raise UserError(f"--out {out} cannot be written ({e.strerror or type(e).__name__}: {e.filename or out}); "
                        "choose a folder you can write to") from None
    args.staged = staged  # (for the Ctrl-C line: was the folder already swapped in?)
    with staged:
        result = rp.reconstruct_photo(args.image, args.mask, profile=args.profile, device=args.device,
                                      class_id=args.species, azimuth=args.azimuth, elevation=args.elevation,
                                      seed=args.seed, progress=not args.quiet, adapt=not args.no_adapt,
                                      hypotheses=args.hypotheses, box=args.box, category=args.category)
        files = rp.write_outputs(result, staged.path, final_dir=out)
    s = result.summary()
    print(f"{s['class']['name']} (class {s['class']['id']}), azimuth {s['camera']['azimuth']:.0f} deg, elevation "
          f"{s['camera']['elevation']:.0f} deg, IoU {s['iou']:.3f} ({s['phase']}), {s['timings_s']['total']:.0f} s; "
          f"wrote {out}/ (overlay.png, turntable.png, {Path(files['glb']).name}, result.json)")
    return 0


class UserError(Exception):
    """A mistake in what the user gave: reported as one ``error:`` line, exit status 2."""


def _user_errors() -> tuple[type, ...]:
    """What the commands raise for a user's mistake (bad argument, missing or damaged file): one line, not a traceback."""
    from .gan.checkpoint import CheckpointError
    from .gan.prior import PriorError

    from .encoder.shipped import EncoderError
    from .gan.imported import ImportedWeightsError

    return (UserError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError, ValueError,
            CheckpointError, PriorError, EncoderError, ImportedWeightsError)


def _interrupted_line(args: argparse.Namespace) -> str:
    if args.command == "reconstruct":
        if getattr(getattr(args, "staged", None), "published", False):
            return f"interrupted (Ctrl-C) after --out {args.out} was written whole"
        return f"interrupted (Ctrl-C): --out {args.out} was left as it was (no partial result)"
    return "interrupted (Ctrl-C); a re-run continues where this one stopped"


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (a mask resized, stray regions dropped, ...) as ``warning: ...`` lines, not file:line dumps."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # bad numbers (--threads 0, --azimuth nan, ...) exit here with status 2
    from .config import check_device

    try:
        check_device(args.device)
    except ValueError as e:
        parser.error(str(e))  # exits with status 2 and the usage line
    from .config import set_threads

    set_threads(args.threads)  # (torchrun's OMP_NUM_THREADS=1 is torch's default per rank on bigger machines)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"\n{_interrupted_line(args)}", file=sys.stderr)
        return 130
    except _user_errors() as e:
        if os.environ.get("MESHINV_TRACEBACK"):
            raise  # the whole story, for a bug report
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "build-prior":
        return build_prior(args)
    if args.command == "build-features":
        return build_features(args)
    if args.command == "build-encoder":
        return build_encoder(args)
    if args.command == "import-weights":
        return import_weights(args)
    if args.command == "reconstruct":
        import warnings

        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            return reconstruct(args)
    ctx = init_distributed(args.device)
    code = {"pretrain": pretrain, "evaluate": evaluate}[args.command](args, ctx)
    shutdown(ctx)  # not reached on an error: torchrun then stops the other ranks
    if ctx.enabled:
        # Every file is written and the process group is left: end the rank here, not through interpreter teardown,
        # where gloo's threads now and then abort a rank that had finished its work ("terminate called without an
        # active exception", exit -6; 2 of 4 torchrun runs on a busy 2-core machine), failing the whole run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
