"""A refrigeration compressor and the cabinet it cools, as a small lumped-parameter model.

Three thermal masses carry the state: the cabinet air (what the thermostat and ``cabinet_temp`` see),
the stored product (slow; it pulls the air back after a door opening) and the evaporator coil (cold while
the compressor runs, warmed by the heater in defrost, holding at 0 °C while its ice melts). The
refrigerant side is quasi-static: the compressor's capacity sets the evaporating temperature against the
coil, the heat rejected sets the condensing temperature above ambient, and the measured pressures and
line temperatures follow those targets with first-order lags (start settling, equalisation when off).

Every update is an exact exponential relaxation over the sub-step, so the model is stable for any step;
sub-steps are kept short (5 s) only so that the thermostat switches close to the right moment and
events (doors, defrost) land exactly on their start and end times.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from simulator.events import DAY, HOUR, ShopEvents
from simulator.faults import KINDS as FAULT_KINDS
from simulator.faults import FaultSpec
from simulator.thermo import COMPRESSION_EXPONENT as X
from simulator.thermo import KELVIN, KINDS, psat, tsat

MAX_SUBSTEP = 5.0  # s
MIN_ON, MIN_OFF = 30.0, 180.0  # s, the controller's anti-short-cycle timers
HP_LOCKOUT = 300.0  # s off after a high-pressure trip
DEFROST_END_COIL = 10.0  # °C coil temperature that terminates the heating phase
DRIP = 120.0  # s after heating, for melt water to drain before the compressor may start
COMPRESSION_EFFICIENCY = 0.7  # isentropic, for the discharge temperature
MAGNETISING_CURRENT = 1.2  # A, the reactive part of the motor current
POWER_FACTOR = 0.92  # of the active part
INRUSH = 4.5  # extra multiples of running current at the instant of start (locked rotor ≈ 5.5 ×)
INRUSH_TAU = 0.8  # s
DESIGN_AMBIENT = 22.0  # °C

# Per-channel sensor noise (standard deviation), in the channel's unit.
NOISE = {
    "suction_pressure": 0.01,
    "discharge_pressure": 0.04,
    "suction_temp": 0.1,
    "discharge_temp": 0.2,
    "cabinet_temp": 0.05,
    "ambient_temp": 0.1,
    "motor_current": 0.02,
    "power": 4.0,
    "evaporator_temp": 0.1,
}


def _relax(value: float, target: float, rate_h: float) -> float:
    """Exact solution of dv/dt = (target - v) * rate over one sub-step (``rate_h`` = rate * h)."""
    return target + (value - target) * math.exp(-rate_h)


class Compressor:
    """One unit; deterministic given ``seed``, ``faults`` and the sequence of ``step`` sizes."""

    def __init__(
        self,
        seed: int = 0,
        faults: Sequence[FaultSpec] = (),
        start_clock_s: float = 8 * 3600,
        kind: str = "freezer",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown unit kind {kind!r} (kinds: {', '.join(KINDS)})")
        for f in faults:
            if not isinstance(f, FaultSpec):
                raise TypeError(f"faults must be FaultSpec, got {f!r}")
        self.kind = KINDS[kind]
        self.faults: tuple[FaultSpec, ...] = tuple(faults)
        self.sim_time = 0.0
        k = self.kind
        # Separate streams: the unit's build, the shop's events and the sensor noise must not disturb
        # one another (reading the sensors more often must not move the next door opening).
        unit = random.Random(f"signalcraft-sim:{seed}:unit")
        self._noise = random.Random(f"signalcraft-sim:{seed}:noise")
        self.set_point = k.set_point + unit.uniform(-0.8, 0.8)
        self.differential = k.differential * unit.uniform(0.8, 1.3)
        self._amb_mean = unit.uniform(19.0, 25.0)
        self._amb_swing = unit.uniform(3.0, 6.0)
        self._weather_phase = unit.uniform(0.0, 2 * math.pi)
        self._ua_leak = k.ua_leak * unit.uniform(0.85, 1.2)
        self._cap = unit.uniform(0.9, 1.1)
        self._c_air = k.c_air * unit.uniform(0.8, 1.25)
        self._defrost_every = unit.uniform(6.0, 8.0) * HOUR
        self._defrost_max = unit.uniform(20.0, 30.0) * 60
        self._vib_base = unit.uniform(1.2, 2.5)  # mm/s RMS of a healthy running compressor
        self._crest = unit.uniform(2.6, 3.2)
        self._voltage = unit.uniform(222.0, 238.0)
        self.events = ShopEvents(
            random.Random(f"signalcraft-sim:{seed}:events"), start_clock_s, unit.uniform(0.6, 1.6)
        )
        # Design point, from which the compression-power constant follows.
        self._t_cond0 = DESIGN_AMBIENT + (k.capacity + k.shaft_power + k.motor_loss) / k.ua_condenser
        p_suc0, p_dis0 = psat(k.design_evap), psat(self._t_cond0)
        self._pr0 = p_dis0 / p_suc0
        self._w_per_bar = k.shaft_power / (p_suc0 * (self._pr0**X - 1))
        self._rated_power = k.shaft_power + k.motor_loss

        amb = self.ambient()
        self.t_air = self.set_point + unit.uniform(-self.differential, self.differential)
        self.t_product = self.set_point
        self.t_coil = self.t_air
        self.p_suc = self.p_dis = self._p_equalised(amb)
        self.t_discharge, self.t_suction = amb + 3.0, amb - 2.0
        self.t_evaporating = self.t_coil
        self.ice = unit.uniform(0.0, 0.5) * k.frost_rate * self._defrost_every * 0.45  # J
        self.power = 0.0  # W, true compressor power
        self.running = False
        self.defrost_phase = ""  # "", "heat" or "drip"
        self._phase_since = 0.0
        self._switched_at = -MIN_OFF  # the unit may start at once
        self._lockout_until = 0.0
        self._next_defrost = unit.uniform(0.2, 1.0) * self._defrost_every
        # Counters for tests and benchmarks.
        self.starts = 0
        self.run_seconds = 0.0
        self.defrosts = 0
        self.hp_trips = 0
        self._control()

    # ---------------------------------------------------------------- public API
    def step(self, dt: float) -> None:
        """Advance ``dt`` simulated seconds (any size; sub-stepped internally)."""
        if not dt >= 0:
            raise ValueError(f"dt must be >= 0, got {dt!r}")
        end = self.sim_time + dt
        while end - self.sim_time > 1e-9:
            h = min(end - self.sim_time, MAX_SUBSTEP, max(self.events.next_time() - self.sim_time, 1e-3))
            if not self.defrost_phase:
                h = min(h, max(self._next_defrost - self.sim_time, 1e-3))
            self._integrate(h)
            self.sim_time = end if end - (self.sim_time + h) < 1e-9 else self.sim_time + h
            self._on_events()
            self._control()

    def sensors(self) -> dict[str, float]:
        """What the controller's sensors read now, with noise; one entry per register-map point."""
        g = self._noise.gauss
        bearing = self._level("bearing_wear")
        t_run = self.sim_time - self._switched_at
        if self.running:
            start = math.exp(-t_run / INRUSH_TAU)  # locked-rotor inrush, gone within a second or two
            power = self.power * (1 + 0.05 * bearing) + 1.2 * self._rated_power * start  # bearing: friction
            current = self._current(power) + INRUSH * self._current(self._rated_power) * start
            load = max(self.p_dis / self.p_suc, 1.0) / self._pr0
            rocking = 1 + 3.0 * math.exp(-t_run / 1.5)  # the shell rocks on its mounts at start
            vib = self._vib_base * (1 + 0.1 * (load - 1)) * (1 + 1.5 * bearing) * rocking
            crest = self._crest + 3.5 * bearing  # spalled races give impacts: peaks grow faster than RMS
        else:
            current = power = 0.0
            vib, crest = 0.04, 3.0  # background vibration from the shop floor
        vib_rms = vib * (1 + 0.03 * g())
        values = {
            "suction_pressure": self.p_suc,
            "discharge_pressure": self.p_dis,
            "suction_temp": self.t_suction,
            "discharge_temp": self.t_discharge,
            "cabinet_temp": self.t_air,
            "ambient_temp": self.ambient(),
            "motor_current": current,
            "power": power,
            "evaporator_temp": self.t_coil,
        }
        out = {name: v + NOISE[name] * g() for name, v in values.items()}
        if not self.running:  # a stopped motor draws nothing; the meter's noise floor is below 1 digit
            out["motor_current"] = out["power"] = 0.0
        for name in ("suction_pressure", "discharge_pressure", "motor_current", "power"):
            out[name] = max(out[name], 0.0)
        out["vibration_rms"] = max(vib_rms, 0.0)
        out["vibration_peak"] = max(vib_rms * crest * (1 + (0.05 + 0.15 * bearing) * abs(g())), 0.0)
        out["running"] = 1.0 if self.running else 0.0
        out["defrost"] = 1.0 if self.defrost_phase else 0.0
        out["door_open"] = 1.0 if self.events.door_open else 0.0
        return out

    def severity(self) -> dict[str, float]:
        """Current severity (0..1) of each injected fault kind."""
        return {f.kind: self._level(f.kind) for f in self.faults}

    def ambient(self) -> float:
        """Ambient temperature (°C): a day/night swing peaking mid-afternoon plus slow weather."""
        clock = self.events.clock(self.sim_time)
        day = self._amb_swing * math.cos(2 * math.pi * (clock - 15 * HOUR) / DAY)
        weather = 0.8 * math.sin(2 * math.pi * self.sim_time / (3.3 * DAY) + self._weather_phase)
        return self._amb_mean + day + weather

    @property
    def cut_in(self) -> float:
        return self.set_point + self._differential()

    @property
    def cut_out(self) -> float:
        return self.set_point - self._differential()

    # ---------------------------------------------------------------- internals
    def _level(self, kind: str) -> float:
        if kind not in FAULT_KINDS:
            raise KeyError(kind)
        return max((f.level(self.sim_time) for f in self.faults if f.kind == kind), default=0.0)

    def _differential(self) -> float:
        # short_cycling: a failing thermostat whose switching band collapses.
        return self.differential * (1 - 0.9 * self._level("short_cycling"))

    def _current(self, power: float) -> float:
        return math.hypot(MAGNETISING_CURRENT, power / (self._voltage * POWER_FACTOR))

    def _p_equalised(self, amb: float) -> float:
        # At standstill the refrigerant settles near the coldest place, the evaporator; a leak leaves
        # less liquid to evaporate, so the standstill pressure falls too.
        return psat(self.t_coil + 0.25 * (amb - self.t_coil)) * (1 - 0.3 * self._level("refrigerant_leak"))

    def _switch(self, on: bool) -> None:
        if on != self.running:
            self.running = on
            self._switched_at = self.sim_time
            if on:
                self.starts += 1

    def _control(self) -> None:
        """The unit's controller: defrost timer and phases, thermostat, anti-short-cycle, HP switch."""
        t = self.sim_time
        if self.defrost_phase == "heat":
            if self.t_coil >= DEFROST_END_COIL or t - self._phase_since >= self._defrost_max:
                self.defrost_phase, self._phase_since = "drip", t
            return
        if self.defrost_phase == "drip":
            if t - self._phase_since < DRIP:
                return
            self.defrost_phase = ""
            self._next_defrost = t + self._defrost_every
        if t >= self._next_defrost - 1e-9:
            self._switch(False)
            self.defrost_phase, self._phase_since = "heat", t
            self.defrosts += 1
            return
        since = t - self._switched_at
        if self.running:
            if self.p_dis >= self.kind.hp_cutout:
                self._switch(False)
                self._lockout_until = t + HP_LOCKOUT
                self.hp_trips += 1
            elif self.t_air <= self.cut_out and since >= MIN_ON * (1 - 0.5 * self._level("short_cycling")):
                self._switch(False)
        else:
            min_off = MIN_OFF * (1 - 0.9 * self._level("short_cycling"))  # the fault also defeats the timer
            if self.t_air >= self.cut_in and since >= min_off and t >= self._lockout_until:
                self._switch(True)

    def _on_events(self) -> None:
        opened, delivered = self.events.advance(self.sim_time)
        self.ice += 2000.0 * opened  # humid shop air freezes onto the coil
        if delivered:
            self.t_product += self.kind.restock_heat / self.kind.c_product

    def _integrate(self, h: float) -> None:
        k = self.kind
        amb = self.ambient()
        leak = self._level("refrigerant_leak")
        ua_ref = k.ua_refrigerant * (1 - 0.9 * leak)  # a starved evaporator: less wetted surface
        if self.running:
            ua_air = k.ua_fan
            # Capacity at evaporating temperature Te is q0 + slope (Te - Te0), and Te = Tcoil - Q / ua_ref;
            # solving gives Q = a + b Tcoil, linear in the coil temperature.
            cond_penalty = min(max(1 - 0.008 * (tsat(self.p_dis) - self._t_cond0), 0.5), 1.2)
            q0 = k.capacity * self._cap * (1 - 0.35 * leak) * cond_penalty  # flash gas at low charge
            slope = k.capacity_slope * self._cap
            share = 1 / (1 + slope / ua_ref)
            a, b = (q0 - slope * k.design_evap) * share, slope * share
        else:
            ua_air, a, b = k.ua_still, 0.0, 0.0
        heater = k.heater if self.defrost_phase == "heat" else 0.0

        g = ua_air + b
        self.t_coil = _relax(self.t_coil, (ua_air * self.t_air + heater - a) / g, g * h / k.c_coil)
        if self.t_coil > 0 and self.ice > 0:
            # Above 0 °C the heat melts ice first; the coil holds at 0 °C until the ice is gone.
            excess = self.t_coil * k.c_coil
            melted = min(excess, self.ice)
            self.ice -= melted
            self.t_coil = (excess - melted) / k.c_coil
        ua_out = self._ua_leak + (k.ua_door if self.events.door_open else 0.0)
        g = ua_out + k.ua_product + ua_air
        target = (ua_out * amb + k.ua_product * self.t_product + ua_air * self.t_coil) / g
        self.t_air = _relax(self.t_air, target, g * h / self._c_air)
        self.t_product = _relax(self.t_product, self.t_air, k.ua_product * h / k.c_product)

        if self.running:
            q = max(a + b * self.t_coil, 0.0)
            self.t_evaporating = self.t_coil - q / ua_ref
            ua_cond = k.ua_condenser * (1 - 0.45 * self._level("condenser_fouling"))
            t_cond = amb + (q + self.power) / ua_cond
            self.p_suc = _relax(self.p_suc, psat(self.t_evaporating), h / 8.0)
            self.p_dis = _relax(self.p_dis, psat(t_cond), h / 25.0)
            ratio = max(self.p_dis / self.p_suc, 1.0)
            self.power = self._w_per_bar * self.p_suc * (ratio**X - 1) + k.motor_loss
            superheat = k.superheat + 20.0 * leak  # the valve runs out of liquid to meter
            self.t_suction = _relax(self.t_suction, self.t_evaporating + superheat, h / 30.0)
            t_in = self.t_suction + KELVIN
            t_out = self.t_suction + t_in * (ratio**X - 1) / COMPRESSION_EFFICIENCY
            self.t_discharge = _relax(self.t_discharge, t_out, h / 150.0)
            self.run_seconds += h
            self.ice += k.frost_rate * h
        else:
            self.t_evaporating = self.t_coil
            p_eq = self._p_equalised(amb)
            self.p_suc = _relax(self.p_suc, p_eq, h / 45.0)
            self.p_dis = _relax(self.p_dis, p_eq, h / 45.0)
            self.power = 0.0
            self.t_suction = _relax(self.t_suction, amb - 2.0, h / 600.0)
            self.t_discharge = _relax(self.t_discharge, amb + 3.0, h / 1200.0)
