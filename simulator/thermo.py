"""Refrigerant saturation curve and the design data of the simulated unit kinds.

The saturation curve is a two-point Clausius-Clapeyron fit, ``ln p = A - B / T``, through R404A's
saturation pressures at -30 °C (2.04 bar) and +40 °C (18.2 bar). It stays within about 5 % of the tables
from -45 °C to +60 °C, which is all a shop freezer or cold room ever sees. Pressures are absolute bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_A = 10.50
_B = 2380.0
KELVIN = 273.15

# Exponent (k-1)/k of isentropic compression for R404A vapour (k ≈ 1.12).
COMPRESSION_EXPONENT = 0.107


def psat(temp_c: float) -> float:
    """Saturation pressure (bar absolute) at ``temp_c``."""
    return math.exp(_A - _B / (temp_c + KELVIN))


def tsat(pressure_bar: float) -> float:
    """Saturation temperature (°C) at ``pressure_bar`` absolute (the inverse of :func:`psat`)."""
    return _B / (_A - math.log(max(pressure_bar, 0.05))) - KELVIN


@dataclass(frozen=True)
class Kind:
    """Design data of one kind of refrigerated unit (before the per-seed variation)."""

    name: str
    set_point: float  # °C, cabinet air
    differential: float  # K: cut-in at set + differential, cut-out at set - differential
    design_evap: float  # °C evaporating temperature at the design point
    capacity: float  # W refrigeration capacity at the design point
    capacity_slope: float  # W/K: capacity gained per K of higher evaporating temperature
    ua_fan: float  # W/K air -> coil with the evaporator fan running
    ua_still: float  # W/K air -> coil with the fan stopped (compressor off, defrost)
    ua_refrigerant: float  # W/K coil -> boiling refrigerant, fully charged evaporator
    ua_leak: float  # W/K ambient -> cabinet air through walls and gaskets
    ua_door: float  # W/K extra air exchange while the door is open
    ua_product: float  # W/K cabinet air <-> stored product
    ua_condenser: float  # W/K condenser air side, clean
    c_air: float  # J/K cabinet air, shelves, walls' inner skin
    c_product: float  # J/K stored product
    c_coil: float  # J/K evaporator coil
    shaft_power: float  # W compression power at the design point
    motor_loss: float  # W mechanical and electrical losses while running
    superheat: float  # K suction superheat kept by the expansion valve
    heater: float  # W defrost heater
    frost_rate: float  # J of ice formed per second of running
    hp_cutout: float  # bar discharge pressure at which the high-pressure switch trips
    restock_heat: float  # J brought in with a delivery of goods


# Design data side by side: (freezer, cold room). A small glass-door shop freezer with a ~1/2 HP hermetic
# compressor, and a walk-in cold room with a ~1 HP one; both R404A-like, with electric defrost.
_DESIGN: dict[str, tuple[float, float]] = {
    "set_point": (-20.0, 2.0),
    "differential": (1.5, 1.5),
    "design_evap": (-30.0, -8.0),
    "capacity": (600.0, 1800.0),
    "capacity_slope": (18.0, 54.0),
    "ua_fan": (85.0, 250.0),
    "ua_still": (15.0, 45.0),
    "ua_refrigerant": (200.0, 600.0),
    "ua_leak": (6.5, 38.0),
    "ua_door": (70.0, 200.0),
    "ua_product": (60.0, 250.0),
    "ua_condenser": (85.0, 230.0),
    "c_air": (35e3, 110e3),
    "c_product": (300e3, 1500e3),
    "c_coil": (8e3, 20e3),
    "shaft_power": (500.0, 900.0),
    "motor_loss": (110.0, 160.0),
    "superheat": (6.0, 6.0),
    "heater": (900.0, 1200.0),
    "frost_rate": (40.0, 90.0),
    "hp_cutout": (28.0, 28.0),
    "restock_heat": (400e3, 2e6),
}
FREEZER = Kind("freezer", **{key: both[0] for key, both in _DESIGN.items()})
COLD_ROOM = Kind("cold_room", **{key: both[1] for key, both in _DESIGN.items()})
KINDS: dict[str, Kind] = {k.name: k for k in (FREEZER, COLD_ROOM)}
