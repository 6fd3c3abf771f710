"""The SynthBirds species table: body plan and plumage of each procedural species.

Every species is a :class:`Species`: mean shape parameters (lengths in object units, the template
sphere having radius 1; angles in degrees) and plumage colours (RGB in ``[0, 1]``). Instances jitter
these means (see :func:`meshinv_lite.data.synthbirds.sample_bird_params`); nothing here is random.

Shape parameters, all in the object frame (``y`` up, beak along ``+z``, symmetry plane ``x = 0``):

* ``body``: ellipsoid semi-axes ``(x, y above, y below, z)``; ``taper`` > 0 makes the front fuller.
* ``pitch``: the whole bird tilted head-up by this angle (perched birds sit upright).
* ``head``: centre ``(y, z)`` and radius; ``crest``: length of a crest pointing up and back.
* ``beak``: length, half-width (angle on the template), profile exponent (> 1: thin and pointed),
  droop (degrees below horizontal).
* ``tail``: length, half-width, half-thickness (angles), lift (degrees above horizontal), fan spread
  (sideways growth of the tail towards its tip, relative to its length).
* ``wing``: open length, half-chord and half-thickness (angles), tip size (the fraction of the wing's
  root patch carried out to the tip: small is pointed, large is rounded), raise angle when open,
  sweep back, folded length (wing tips past the body when folded).
"""
from __future__ import annotations

from dataclasses import dataclass, field

RGB = tuple[float, float, float]


def _hex(code: str) -> RGB:
    code = code.lstrip("#")
    return tuple(int(code[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


@dataclass(frozen=True)
class Plumage:
    """Colours and patterns of a species (colours RGB in ``[0, 1]``).

    ``head_cover``: 1 colours the whole head, 0 only the crown. ``mask``: strength of a dark face
    mask around the eye. ``wing_bars`` / ``tail_band``: number of light bars on the wing, dark band at the
    tail tip (0/1). ``bars``: frequency of horizontal body bars (0 = none) and their contrast.
    ``streaks``: strength of vertical breast streaks. ``spots``: number of spots per side and their
    radius (degrees). ``noise``: amplitude of the fine feather-like noise.
    """

    base: RGB
    belly: RGB
    wing: RGB
    head: RGB
    beak: RGB
    tail: RGB
    wing_tip: RGB
    accent: RGB  # colour of bars, streaks, spots and wing bars
    head_cover: float = 1.0
    mask: float = 0.0
    eye_ring: float = 0.0
    belly_line: float = -0.15  # template height below which the belly colour takes over
    wing_bars: int = 0
    tail_band: float = 0.0
    bars: float = 0.0
    bar_contrast: float = 0.0
    streaks: float = 0.0
    spots: int = 0
    spot_radius: float = 5.0
    noise: float = 0.05


@dataclass(frozen=True)
class Species:
    """One species: a name, mean body plan and plumage."""

    name: str
    body: tuple[float, float, float, float] = (0.42, 0.42, 0.48, 0.72)
    taper: float = 0.12
    pitch: float = 15.0
    head: tuple[float, float, float] = (0.42, 0.55, 0.3)
    crest: float = 0.0
    beak: tuple[float, float, float, float] = (0.28, 24.0, 1.6, 8.0)
    tail: tuple[float, float, float, float, float] = (0.55, 36.0, 12.0, 5.0, 0.5)
    wing: tuple[float, float, float, float, float, float, float] = (0.95, 40.0, 13.0, 0.35, 25.0, 0.25, 0.35)
    plumage: Plumage = field(default_factory=lambda: Plumage(*([(0.5, 0.5, 0.5)] * 8)))


SPECIES: tuple[Species, ...] = (
    Species(
        "cardinal",
        body=(0.40, 0.42, 0.48, 0.70), pitch=22.0, head=(0.42, 0.52, 0.30), crest=0.30,
        beak=(0.26, 30.0, 1.3, 12.0), tail=(0.75, 36.0, 12.0, -5.0, 0.5),
        plumage=Plumage(
            base=_hex("c8102e"), belly=_hex("d8434f"), wing=_hex("8e1b22"), head=_hex("d31c2c"),
            beak=_hex("f28c28"), tail=_hex("8e1b22"), wing_tip=_hex("5c1116"), accent=_hex("201010"),
            mask=1.0, noise=0.05,
        ),
    ),
    Species(
        "blue_jay",
        body=(0.42, 0.44, 0.50, 0.74), pitch=18.0, head=(0.44, 0.54, 0.31), crest=0.26,
        beak=(0.26, 24.0, 1.7, 8.0), tail=(0.80, 36.0, 12.0, -2.0, 0.55),
        plumage=Plumage(
            base=_hex("3a6fc4"), belly=_hex("e9edf2"), wing=_hex("2f62c2"), head=_hex("4a7fd0"),
            beak=_hex("1a1a1a"), tail=_hex("2d5fb8"), wing_tip=_hex("0f1d3a"), accent=_hex("f5f5f5"),
            head_cover=0.55, wing_bars=3, tail_band=1.0, belly_line=-0.05, noise=0.04,
        ),
    ),
    Species(
        "goldfinch",
        body=(0.38, 0.40, 0.45, 0.62), pitch=15.0, head=(0.40, 0.50, 0.29),
        beak=(0.20, 26.0, 1.4, 6.0), tail=(0.48, 34.0, 11.0, 0.0, 0.7),
        wing=(0.85, 38.0, 13.0, 0.3, 28.0, 0.25, 0.30),
        plumage=Plumage(
            base=_hex("f4d020"), belly=_hex("f6e060"), wing=_hex("141414"), head=_hex("f4d020"),
            beak=_hex("f0a070"), tail=_hex("1a1a1a"), wing_tip=_hex("0a0a0a"), accent=_hex("f2f2f2"),
            head_cover=0.0, wing_bars=2, noise=0.04,
        ),
    ),
    Species(
        "crow",
        body=(0.45, 0.46, 0.52, 0.82), pitch=10.0, head=(0.44, 0.62, 0.30),
        beak=(0.42, 28.0, 1.5, 10.0), tail=(0.65, 40.0, 12.0, 0.0, 0.8),
        wing=(1.05, 42.0, 13.0, 0.45, 22.0, 0.25, 0.40),
        plumage=Plumage(
            base=_hex("1b1c22"), belly=_hex("22232b"), wing=_hex("171820"), head=_hex("1d1e25"),
            beak=_hex("0d0d0d"), tail=_hex("15161c"), wing_tip=_hex("0b0b10"), accent=_hex("3a3f5a"),
            noise=0.06,
        ),
    ),
    Species(
        "robin",
        body=(0.43, 0.42, 0.52, 0.72), pitch=25.0, head=(0.42, 0.53, 0.30),
        beak=(0.30, 22.0, 1.7, 6.0), tail=(0.62, 36.0, 12.0, -4.0, 0.55),
        plumage=Plumage(
            base=_hex("5d5650"), belly=_hex("d8672a"), wing=_hex("4f4842"), head=_hex("2a2726"),
            beak=_hex("e8b028"), tail=_hex("3a3533"), wing_tip=_hex("2e2a28"), accent=_hex("f0f0f0"),
            eye_ring=1.0, belly_line=0.1, noise=0.05,
        ),
    ),
    Species(
        "sparrow",
        body=(0.42, 0.40, 0.48, 0.66), pitch=12.0, head=(0.40, 0.50, 0.30),
        beak=(0.20, 28.0, 1.3, 8.0), tail=(0.55, 34.0, 12.0, 5.0, 0.5),
        wing=(0.85, 38.0, 13.0, 0.45, 25.0, 0.25, 0.30),
        plumage=Plumage(
            base=_hex("8a6a48"), belly=_hex("c9b8a0"), wing=_hex("7a5536"), head=_hex("8f8070"),
            beak=_hex("5a4a3a"), tail=_hex("6a4d35"), wing_tip=_hex("3e2c1e"), accent=_hex("3a2616"),
            head_cover=0.45, wing_bars=1, streaks=0.8, spots=6, spot_radius=4.0, noise=0.09,
        ),
    ),
    Species(
        "seagull",
        body=(0.42, 0.40, 0.48, 0.80), pitch=5.0, head=(0.38, 0.60, 0.30),
        beak=(0.38, 24.0, 1.5, 4.0), tail=(0.50, 36.0, 11.0, 3.0, 0.45),
        wing=(1.15, 40.0, 12.0, 0.15, 20.0, 0.35, 0.50),
        plumage=Plumage(
            base=_hex("f3f3f1"), belly=_hex("fbfbfb"), wing=_hex("a9b0b8"), head=_hex("f7f7f5"),
            beak=_hex("f2c230"), tail=_hex("f0f0f0"), wing_tip=_hex("111111"), accent=_hex("222222"),
            belly_line=0.05, noise=0.025,
        ),
    ),
    Species(
        "mallard",
        body=(0.46, 0.38, 0.46, 0.86), pitch=0.0, head=(0.42, 0.64, 0.30),
        beak=(0.34, 30.0, 0.8, 12.0), tail=(0.38, 36.0, 10.0, 15.0, 0.55),
        wing=(1.0, 40.0, 13.0, 0.35, 22.0, 0.3, 0.30),
        plumage=Plumage(
            base=_hex("9a9690"), belly=_hex("bfb9b0"), wing=_hex("6e6560"), head=_hex("1f6b3a"),
            beak=_hex("e0c83a"), tail=_hex("2a2a2a"), wing_tip=_hex("3b3f8f"), accent=_hex("6a3a24"),
            bars=9.0, bar_contrast=0.12, noise=0.04,
        ),
    ),
    Species(
        "woodpecker",
        body=(0.40, 0.42, 0.48, 0.74), pitch=35.0, head=(0.42, 0.55, 0.30),
        beak=(0.40, 22.0, 1.2, 0.0), tail=(0.62, 32.0, 11.0, -10.0, 0.35),
        plumage=Plumage(
            base=_hex("1a1a1a"), belly=_hex("ececec"), wing=_hex("151515"), head=_hex("d01f1f"),
            beak=_hex("3a3a3a"), tail=_hex("151515"), wing_tip=_hex("101010"), accent=_hex("f0f0f0"),
            head_cover=0.35, wing_bars=5, bars=14.0, bar_contrast=0.75, belly_line=0.0, noise=0.03,
        ),
    ),
    Species(
        "parrot",
        body=(0.44, 0.44, 0.50, 0.72), pitch=30.0, head=(0.46, 0.52, 0.33),
        beak=(0.30, 34.0, 0.9, 45.0), tail=(0.95, 30.0, 11.0, -8.0, 0.3),
        plumage=Plumage(
            base=_hex("1f9e3a"), belly=_hex("6cc24a"), wing=_hex("1f4fc2"), head=_hex("d62a1e"),
            beak=_hex("e8e0c8"), tail=_hex("c7301e"), wing_tip=_hex("12307a"), accent=_hex("f2d21a"),
            wing_bars=1, tail_band=0.0, noise=0.04,
        ),
    ),
    Species(
        "kingfisher",
        body=(0.40, 0.40, 0.48, 0.62), pitch=18.0, head=(0.42, 0.50, 0.36),
        beak=(0.55, 24.0, 1.8, 2.0), tail=(0.32, 32.0, 10.0, -5.0, 0.35),
        wing=(0.85, 36.0, 12.0, 0.35, 25.0, 0.2, 0.25),
        plumage=Plumage(
            base=_hex("1f8fb0"), belly=_hex("e8782a"), wing=_hex("19739a"), head=_hex("1f8fb0"),
            beak=_hex("1a1a1a"), tail=_hex("1aa6c8"), wing_tip=_hex("0f4a63"), accent=_hex("7de0f0"),
            belly_line=0.05, spots=8, spot_radius=3.0, mask=0.4, noise=0.04,
        ),
    ),
    Species(
        "owl",
        body=(0.50, 0.46, 0.54, 0.62), taper=0.05, pitch=55.0, head=(0.40, 0.45, 0.40),
        beak=(0.14, 24.0, 1.5, 40.0), tail=(0.35, 36.0, 11.0, -10.0, 0.45),
        wing=(1.0, 42.0, 13.0, 0.5, 20.0, 0.2, 0.25),
        plumage=Plumage(
            base=_hex("c49650"), belly=_hex("f4efe6"), wing=_hex("b8884a"), head=_hex("cfa260"),
            beak=_hex("e0cfa8"), tail=_hex("b8884a"), wing_tip=_hex("8a6236"), accent=_hex("4a3622"),
            eye_ring=1.0, streaks=0.6, spots=14, spot_radius=4.0, wing_bars=2, noise=0.07,
        ),
    ),
)

SPECIES_NAMES: tuple[str, ...] = tuple(s.name for s in SPECIES)


#: Species held out of everything: no ``train``/``val``/``test``/``test_hard`` image, no pseudo ground truth, no
#: GAN class and no feature-network label. They only appear in the ``test_unseen`` split, to measure how
#: inversion behaves out of distribution. Each departs from all twelve species above in shape and plumage:
#:
#: * ``hoopoe``: a long, low body (pitch 5 degrees) under the largest crest (0.5, seen at most 0.3), a long
#:   drooping beak (the seen long beaks are straight), pinkish-orange with black wings barred in white;
#: * ``toucan``: a blunt beak longer and wider than any seen one (0.75 long, 42 degrees wide; seen at most 0.55
#:   and 34), black with a yellow bib and an orange beak;
#: * ``peafowl``: a long tail fanned far wider than any seen one (fan 1.3 against at most 0.8), blue-green and
#:   densely spotted.
UNSEEN_SPECIES: tuple[Species, ...] = (
    Species(
        "hoopoe",
        body=(0.38, 0.38, 0.44, 0.80), pitch=5.0, head=(0.40, 0.58, 0.29), crest=0.50,
        beak=(0.60, 26.0, 1.4, 25.0), tail=(0.60, 34.0, 11.0, 0.0, 0.6),
        wing=(1.0, 44.0, 13.0, 0.45, 25.0, 0.25, 0.30),
        plumage=Plumage(
            base=_hex("e0a070"), belly=_hex("f0c8a0"), wing=_hex("141414"), head=_hex("e39a5c"),
            beak=_hex("2a2a2a"), tail=_hex("181818"), wing_tip=_hex("0a0a0a"), accent=_hex("f4f4f4"),
            wing_bars=5, tail_band=1.0, noise=0.04,
        ),
    ),
    Species(
        "toucan",
        body=(0.42, 0.44, 0.50, 0.70), pitch=25.0, head=(0.44, 0.55, 0.31),
        beak=(0.75, 42.0, 0.9, 12.0), tail=(0.55, 34.0, 12.0, -8.0, 0.4),
        plumage=Plumage(
            base=_hex("111111"), belly=_hex("f6d43a"), wing=_hex("0d0d0d"), head=_hex("121212"),
            beak=_hex("f07a1a"), tail=_hex("0c0c0c"), wing_tip=_hex("080808"), accent=_hex("d8282a"),
            head_cover=1.0, belly_line=0.25, eye_ring=1.0, noise=0.03,
        ),
    ),
    Species(
        "peafowl",
        body=(0.42, 0.42, 0.48, 0.76), pitch=8.0, head=(0.36, 0.62, 0.26), crest=0.20,
        beak=(0.24, 26.0, 1.5, 8.0), tail=(1.05, 42.0, 10.0, 8.0, 1.3),
        plumage=Plumage(
            base=_hex("1d4fa8"), belly=_hex("1a3f7a"), wing=_hex("a08a5c"), head=_hex("1f5cc4"),
            beak=_hex("9a8a70"), tail=_hex("2e7a3c"), wing_tip=_hex("3a2a1a"), accent=_hex("d8b430"),
            spots=18, spot_radius=4.5, noise=0.05,
        ),
    ),
)

UNSEEN_SPECIES_NAMES: tuple[str, ...] = tuple(s.name for s in UNSEEN_SPECIES)
