"""What an evaluation keeps on disk: per-image CSV rows (merged across ranks) and the reconstructions themselves."""
from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..io import atomic_savez, atomic_write_bytes

CSV_NAME = "per_image.csv"


PART_NAME = "per_image.part{rank}.csv"  # a rank's rows while a sharded evaluation runs


PART_GLOB = "per_image.part*.csv"


RECON_DIR = "reconstructions"


TEXT_COLUMNS = ("name", "species", "class_chosen_name")  # kept as strings when a CSV is read back ("000012" is a name)


def generator_fingerprint(generator: torch.nn.Module) -> str:
    """SHA-1 of a network's parameters and buffers: which prior made these reconstructions (also used to
    check that every rank of a distributed run holds the same networks)."""
    h = hashlib.sha1()
    for k, v in sorted(generator.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a per-image CSV (numbers as floats where they parse)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append({k: (v if k in TEXT_COLUMNS else _parse(v)) for k, v in r.items()})
    return rows


def _parse(v: str):
    if v in ("", "nan"):
        return float("nan")
    if v in ("True", "False"):
        return v == "True"
    try:
        return float(v) if any(c in v for c in ".eE") or v.lstrip("-").isdigit() else v
    except ValueError:
        return v


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write rows atomically (columns: the union, first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, restval="", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_bytes(path, buf.getvalue().encode())


def _merge_parts(out: Path) -> None:
    """Fold the per-rank CSVs an interrupted sharded run left behind into ``per_image.csv``."""
    parts = sorted(out.glob(PART_GLOB))
    if not parts:
        return
    by_name = {str(r["name"]): r for r in read_rows(out / CSV_NAME)}
    for p in parts:
        by_name.update({str(r["name"]): r for r in read_rows(p)})
    write_rows(out / CSV_NAME, sorted(by_name.values(), key=lambda r: int(r["index"])))
    for p in parts:
        p.unlink()


def save_reconstructions(path: str | Path, names: Sequence[str], rec) -> Path:
    """The parts of a :class:`~meshinv_lite.inversion.Reconstruction` that renders need, atomically."""
    atomic_savez(
        path, names=np.asarray(list(names)), z=rec.z.cpu().numpy(), class_id=rec.class_id.cpu().numpy(),
        texture=(rec.texture.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy(),
        deformation=rec.deformation.float().cpu().numpy(), camera=rec.camera.as_tensor().cpu().numpy(),
        init_camera=rec.init_camera.as_tensor().cpu().numpy(),
    )
    return Path(path)


def load_reconstructions(out_dir: str | Path, names: Sequence[str]) -> dict:
    """Stacked arrays of the saved reconstructions of ``names`` (in that order), as tensors:
    ``texture`` ``(B, 3, Ht, Wt)`` float in [0, 1], ``deformation``, ``camera`` ``(B, 7)``, ``z``, ``class_id``.
    A name saved twice (a batch re-run after an interruption) comes from the newest file."""
    files = sorted(Path(out_dir, RECON_DIR).glob("batch_*.npz"), key=lambda p: p.stat().st_mtime_ns)
    where: dict[str, tuple[Path, int]] = {}
    for f in files:
        with np.load(f) as d:
            for i, n in enumerate(d["names"].tolist()):
                where[str(n)] = (f, i)
    missing = [n for n in names if n not in where]
    if missing:
        raise FileNotFoundError(f"no saved reconstruction for {missing[:5]}{' ...' if len(missing) > 5 else ''} in "
                                f"{Path(out_dir, RECON_DIR)}; re-run evaluate_split (or delete {CSV_NAME} to start over)")
    cache: dict[Path, dict] = {}
    parts: dict[str, list] = {k: [] for k in ("z", "class_id", "texture", "deformation", "camera")}
    for n in names:
        f, i = where[n]
        if f not in cache:
            with np.load(f) as d:
                cache[f] = {k: d[k] for k in parts}
        for k in parts:
            parts[k].append(cache[f][k][i])
    out = {k: torch.from_numpy(np.stack(v)) for k, v in parts.items()}
    out["texture"] = out["texture"].float() / 255
    out["names"] = list(names)
    return out
