"""What the dataset scripts in ``data_scripts/`` share: the crop options of a converter and one way to run a build.

A build is interrupted with Ctrl-C or stopped by bad input the same way in every script: the message on stderr and
exit code 2 for what the user can fix (a missing file, an existing split, a format error), 130 for an interruption
(a re-run resumes the unfinished split).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional

from ._checks import int_at_least
from .config import get_profile


def add_crop_arguments(parser: argparse.ArgumentParser, what: str = "images") -> None:
    """``--out``, ``--profile`` / ``--image-size``, ``--padding``, ``--limit``, ``--force``, ``--quiet``: the options of
    every converter of real photos (CUB, PASCAL3D+) into the dataset format."""
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", default="lite", choices=["quick", "lite", "paper"], help="sets --image-size")
    parser.add_argument("--image-size", type=int_at_least(8), default=None, help="crop size in pixels (default: the profile's)")
    parser.add_argument("--padding", type=float, default=0.05, help="bbox padding, fraction of its size per side")
    parser.add_argument("--limit", type=int_at_least(1), default=None, help=f"only the first N {what} of each split")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def crop_size(args: argparse.Namespace) -> int:
    """The crop size in pixels: ``--image-size``, else the profile's render size."""
    return args.image_size or get_profile(args.profile).render_size


def run_build(build: Callable[[], dict], errors: tuple = ()) -> tuple[Optional[dict], int]:
    """``(build()'s report, 0)``, or ``(None, exit code)`` after printing why it stopped: 2 for what the user can fix
    (``FileNotFoundError``, ``FileExistsError``, ``ValueError`` and the reader's format ``errors``), 130 for Ctrl-C."""
    try:
        return build(), 0
    except (FileNotFoundError, FileExistsError, ValueError, *errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return None, 2
    except KeyboardInterrupt:
        print("\ninterrupted (Ctrl-C); a re-run resumes the unfinished split", file=sys.stderr)
        return None, 130
