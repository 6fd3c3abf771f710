"""The SynthCars body-type table: mean proportions and paint palette of each procedural car type.

Every body type is a :class:`CarType`: mean shape parameters and a paint palette (RGB in ``[0, 1]``).
Instances jitter these means (see :func:`meshinv_lite.data.car_shape.sample_car_params`); nothing here is
random. The table plays the role :mod:`meshinv_lite.data.species` plays for birds.

Units and frame. Lengths are in **object units**, the template sphere having radius 1; cars are 2.1 to 2.6
long, about the extent of a SynthBirds bird (one unit is roughly 2 m of a real car). The table measures

* heights ``y`` **from the ground** (the tyres' contact line is ``y = 0``), and
* longitudinal positions ``s`` **from the nose** (the front bumper is ``s = 0``, the tail ``s = length``).

The built car lives in the object frame of the template and of SynthBirds: ``y`` up, the car's front along
``+z``, its left-right symmetry plane ``x = 0``; it is centred on its bounding box, so object
``z = length / 2 - s`` and object ``y = y_ground - top / 2`` with ``top`` the highest point of the car
(:attr:`CarType.top`).

The side profile (the car's top line) runs through these points, in ``(s, y)``::

    (0, nose_height) -> (bonnet[0], bonnet[1]) -> (roof[0], height) -> (roof[1], height)
        -> (length - boot[0], boot[1]) -> (length, tail_height)

so the windscreen runs from the bonnet's end up to the roof's start (its slope is
:attr:`CarType.windscreen_deg`), the rear window from the roof's end down to the boot
(:attr:`CarType.rear_window_deg`). Above the ``belt`` line, between the windscreen and the boot, the
cabin (the "greenhouse") is narrower than the body: stepped in by ``shoulder`` and leaning in by
``tumblehome``. A box truck's "boot" is its cargo box (``boot[1]`` above the roof), a pickup's its bed (an
``open_top`` well), a roadster's cabin an open cockpit behind a low windscreen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .species import RGB, _hex


@dataclass(frozen=True)
class CarType:
    """One body type: a name, mean proportions (object units, see the module docstring) and paint.

    Attributes:
        length, width: bumper to bumper (along ``z``) and side to side (``x``, mirrors excluded).
        height: ground to roof.
        clearance: ground to the underbody between the wheels.
        nose_height: ground to the top edge of the front face (where the bonnet starts).
        bonnet: length (nose to the windscreen base) and height at the windscreen base.
        belt: ground to the window sills (the bottom edge of the side glass).
        roof: start and end of the flat roof, distances from the nose.
        boot: length (tail to the rear window's base) and height there; a box truck's cargo box, a pickup's bed.
        tail_height: ground to the top edge of the rear face.
        wheel_radius, tyre_width: tyre size; axles: front and rear axle, distances from the nose.
        tumblehome: inward lean of the side glass (``x`` lost per unit of height above the belt).
        shoulder: step in from the body side to the side glass at the belt line.
        open_top: start, end (distances from the nose) and depth of an open well in the top: a pickup's bed,
            a roadster's cockpit; depth 0 = none.
        side_windows: side window panes between the windscreen and the rear pillar (0 = none).
        glass_end: side glass stops at this distance from the nose (a panel van's is behind the cab);
            ``None``: at the rear pillar.
        palette: paint colours an instance draws from (RGB in ``[0, 1]``).
        cargo_color: paint of the rear body behind the cabin (a box truck's box); ``None``: the paint.
    """

    name: str
    length: float = 2.40
    width: float = 0.90
    height: float = 0.72
    clearance: float = 0.08
    nose_height: float = 0.36
    bonnet: tuple[float, float] = (0.62, 0.47)
    belt: float = 0.49
    roof: tuple[float, float] = (1.09, 1.60)
    boot: tuple[float, float] = (0.42, 0.50)
    tail_height: float = 0.48
    wheel_radius: float = 0.17
    tyre_width: float = 0.12
    axles: tuple[float, float] = (0.47, 1.89)
    tumblehome: float = 0.22
    shoulder: float = 0.035
    open_top: tuple[float, float, float] = (0.0, 0.0, 0.0)
    side_windows: int = 2
    glass_end: Optional[float] = None
    palette: tuple[RGB, ...] = ((0.6, 0.6, 0.62),)
    cargo_color: Optional[RGB] = None

    @property
    def top(self) -> float:
        """Ground to the highest point (the roof, or a box truck's cargo box)."""
        return max(self.height, self.boot[1], self.tail_height, self.nose_height, self.bonnet[1])

    @property
    def windscreen_deg(self) -> float:
        """Slope of the windscreen, degrees above horizontal (90 = upright)."""
        return math.degrees(math.atan2(self.height - self.bonnet[1], self.roof[0] - self.bonnet[0]))

    @property
    def rear_window_deg(self) -> float:
        """Slope of the rear window (roof end to boot), degrees above horizontal; negative where the profile
        rises behind the roof (a box truck's cargo box)."""
        return math.degrees(math.atan2(self.height - self.boot[1], self.length - self.boot[0] - self.roof[1]))


_GREYS = (_hex("c9ccd1"), _hex("1c1d21"), _hex("f2f2f0"), _hex("6d7178"))

CAR_TYPES: tuple[CarType, ...] = (
    CarType(
        "sedan",
        palette=_GREYS + (_hex("1f3a6b"), _hex("8c1c1c"), _hex("2f4f3a")),
    ),
    CarType(
        "hatchback",
        length=2.10, width=0.88, height=0.74, clearance=0.08, nose_height=0.37,
        bonnet=(0.50, 0.48), belt=0.50, roof=(0.96, 1.86), boot=(0.06, 0.52), tail_height=0.52,
        wheel_radius=0.165, axles=(0.41, 1.68), tumblehome=0.20,
        palette=_GREYS + (_hex("d23a2a"), _hex("f0c419"), _hex("2d7dd2")),
    ),
    CarType(
        "wagon",
        length=2.46, width=0.90, height=0.74, clearance=0.08, nose_height=0.36,
        bonnet=(0.62, 0.47), belt=0.50, roof=(1.08, 2.30), boot=(0.06, 0.52), tail_height=0.51,
        axles=(0.47, 1.93), tumblehome=0.18, side_windows=3,
        palette=_GREYS + (_hex("2b4c7e"), _hex("5a3d2b"), _hex("7a8450")),
    ),
    CarType(
        "suv",
        length=2.36, width=0.95, height=0.88, clearance=0.12, nose_height=0.50,
        bonnet=(0.58, 0.59), belt=0.61, roof=(1.00, 2.22), boot=(0.06, 0.64), tail_height=0.62,
        wheel_radius=0.20, tyre_width=0.14, axles=(0.47, 1.88), tumblehome=0.14, shoulder=0.03, side_windows=3,
        palette=_GREYS + (_hex("3c4a3e"), _hex("7b1e22"), _hex("24374f")),
    ),
    CarType(
        "pickup",
        length=2.60, width=0.95, height=0.90, clearance=0.13, nose_height=0.56,
        bonnet=(0.70, 0.62), belt=0.64, roof=(0.99, 1.40), boot=(1.10, 0.64), tail_height=0.63,
        wheel_radius=0.20, tyre_width=0.14, axles=(0.50, 2.06), tumblehome=0.12, shoulder=0.03,
        open_top=(1.56, 2.54, 0.13), side_windows=2,
        palette=_GREYS + (_hex("a3261e"), _hex("1d3f73"), _hex("c48a2c")),
    ),
    CarType(
        "van",
        length=2.46, width=0.98, height=1.00, clearance=0.09, nose_height=0.46,
        bonnet=(0.38, 0.56), belt=0.59, roof=(0.76, 2.42), boot=(0.02, 0.98), tail_height=0.97,
        wheel_radius=0.165, axles=(0.44, 1.96), tumblehome=0.07, shoulder=0.015, side_windows=1, glass_end=0.95,
        palette=(_hex("f4f4f2"), _hex("f4f4f2"), _hex("c9ccd1"), _hex("1f4f9a"), _hex("d9d2b6"), _hex("b01c1c")),
    ),
    CarType(
        "coupe",
        length=2.30, width=0.92, height=0.62, clearance=0.07, nose_height=0.32,
        bonnet=(0.74, 0.42), belt=0.44, roof=(1.14, 1.40), boot=(0.32, 0.45), tail_height=0.45,
        wheel_radius=0.17, axles=(0.47, 1.82), tumblehome=0.28, side_windows=1,
        palette=_GREYS + (_hex("d81e1e"), _hex("f2b705"), _hex("1464c8")),
    ),
    CarType(
        "minibus",
        length=2.60, width=0.98, height=1.10, clearance=0.10, nose_height=0.50,
        bonnet=(0.14, 0.58), belt=0.61, roof=(0.52, 2.56), boot=(0.02, 1.08), tail_height=1.06,
        wheel_radius=0.165, axles=(0.44, 2.02), tumblehome=0.06, shoulder=0.015, side_windows=5,
        palette=(_hex("f4f4f2"), _hex("f2c230"), _hex("c9ccd1"), _hex("2f6db5"), _hex("9c2a2a")),
    ),
)

CAR_TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in CAR_TYPES)


#: Body types held out of everything but an unseen-type test split, like
#: :data:`~meshinv_lite.data.species.UNSEEN_SPECIES`. Each departs from all eight types above:
#:
#: * ``roadster``: lower than any seen type (0.56 against at least 0.62), a long bonnet, no roof: a low
#:   windscreen in front of an open cockpit;
#: * ``box_truck``: a cab in front of a cargo box higher than any seen roof (1.24 against at most 1.10),
#:   the box painted apart from the cab.
UNSEEN_CAR_TYPES: tuple[CarType, ...] = (
    CarType(
        "roadster",
        length=2.20, width=0.90, height=0.56, clearance=0.06, nose_height=0.28,
        bonnet=(0.82, 0.38), belt=0.40, roof=(1.00, 1.10), boot=(0.98, 0.40), tail_height=0.41,
        wheel_radius=0.16, axles=(0.42, 1.78), tumblehome=0.30, shoulder=0.03,
        open_top=(1.16, 1.66, 0.12), side_windows=0,
        palette=(_hex("c8102e"), _hex("f2f2f0"), _hex("111111"), _hex("1d5c3a"), _hex("e0b000")),
    ),
    CarType(
        "box_truck",
        length=2.60, width=0.98, height=0.90, clearance=0.12, nose_height=0.50,
        bonnet=(0.30, 0.57), belt=0.60, roof=(0.58, 0.96), boot=(1.54, 1.24), tail_height=1.24,
        wheel_radius=0.19, tyre_width=0.14, axles=(0.42, 2.06), tumblehome=0.06, shoulder=0.015, side_windows=1,
        palette=(_hex("f4f4f2"), _hex("1f4f9a"), _hex("b01c1c"), _hex("2e6b3a")),
        cargo_color=_hex("ecebe6"),
    ),
)

UNSEEN_CAR_TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in UNSEEN_CAR_TYPES)
