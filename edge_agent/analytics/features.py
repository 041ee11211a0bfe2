"""Window features: mode-conditioned statistics of the last ``window`` readings (numpy only).

A compressor's sensors mean different things in different operating modes: the discharge pressure of a
stopped compressor tells nothing about its condenser, and the first minute after a start is all inrush.
So every reading is first labelled with an operating mode (off, running, start transient, defrost,
post-defrost pull-down, door open) when it is pushed, and the features are statistics over the readings
of the mode where they are meaningful: medians over steady running readings for the pressures,
temperatures, current, power and vibration; physically derived quantities (pressure ratio, superheat,
condensing approach, current per pressure ratio, vibration crest factor); duty-cycle counts; the
cabinet temperature outside defrost.

Readings live in a preallocated ring buffer: ``push`` writes one row in O(1) and labels its mode from
O(1) state (readings since the last start, since the end of the last defrost), so no statistic needs
the rows in time order and nothing is ever re-stacked. Medians, not means: one spiky reading must not
move a window.

Time is counted in readings, never in wall-clock seconds, so the same code works when the machine's
clock runs faster than the wall's (the simulator's demo mode): the caller says how many readings a
start transient and a pull-down last.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

#: Points of the compressor profile, in the order of the ring buffer's columns.
POINTS: tuple[str, ...] = (
    "suction_pressure",
    "discharge_pressure",
    "suction_temp",
    "discharge_temp",
    "cabinet_temp",
    "ambient_temp",
    "evaporator_temp",
    "motor_current",
    "power",
    "vibration_rms",
    "vibration_peak",
    "running",
    "defrost",
    "door_open",
)
COL = {name: i for i, name in enumerate(POINTS)}
BINARY = ("running", "defrost", "door_open")
ANALOG = tuple(p for p in POINTS if p not in BINARY)

#: Physically possible range of each point. Outside it the sensor, not the machine, is wrong.
RANGES: dict[str, tuple[float, float]] = {
    "suction_pressure": (0.0, 40.0),  # bar absolute
    "discharge_pressure": (0.0, 60.0),
    "suction_temp": (-70.0, 80.0),
    "discharge_temp": (-50.0, 180.0),
    "cabinet_temp": (-60.0, 60.0),
    "ambient_temp": (-40.0, 70.0),
    "evaporator_temp": (-70.0, 60.0),
    "motor_current": (0.0, 200.0),
    "power": (0.0, 100_000.0),
    "vibration_rms": (0.0, 200.0),
    "vibration_peak": (0.0, 500.0),
    "running": (0.0, 1.0),
    "defrost": (0.0, 1.0),
    "door_open": (0.0, 1.0),
}
_LO = np.array([RANGES[p][0] for p in POINTS])
_HI = np.array([RANGES[p][1] for p in POINTS])

#: Feature vector, in the order the model expects (the manifest repeats it and the runner checks it).
FEATURES: tuple[str, ...] = (
    "suction_pressure",
    "discharge_pressure",
    "suction_temp",
    "discharge_temp",
    "evaporator_temp",
    "motor_current",
    "power",
    "vibration_rms",
    "vibration_peak",
    "pressure_ratio",
    "superheat",
    "condensing_approach",
    "discharge_superheat",
    "current_per_ratio",
    "vibration_crest",
    "evaporator_approach",
    "suction_pressure_off",
    "on_ratio",
    "starts",
    "run_length",
    "cabinet_temp",
    "ambient_temp",
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}
# Columns whose median over steady running readings is a feature, in FEATURES order.
_RUN_POINTS = FEATURES[:9]
_RUN_COLS = np.array([COL[p] for p in _RUN_POINTS])
_N_RUN = len(_RUN_POINTS)
_RUN_COL_LIST = _RUN_COLS.tolist()
# Columns of the median matrix after the running ones and the seven derived quantities.
_M_OFF, _M_CAB, _M_AMB = _N_RUN + 7, _N_RUN + 8, _N_RUN + 9
_N_MEDIANS = _N_RUN + 10
_SP, _DP, _SUCT_T, _DIS_T = (
    COL["suction_pressure"],
    COL["discharge_pressure"],
    COL["suction_temp"],
    COL["discharge_temp"],
)
_CAB, _AMB, _EVAP, _CUR = (
    COL["cabinet_temp"],
    COL["ambient_temp"],
    COL["evaporator_temp"],
    COL["motor_current"],
)
_VRMS, _VPEAK, _RUNNING = COL["vibration_rms"], COL["vibration_peak"], COL["running"]

# Saturation curve ln(p / bar) = A - B / T(K) of R404A, the usual commercial refrigerant, through
# -30 °C / 2.04 bar and +40 °C / 18.2 bar (absolute). Only used to turn a pressure into a temperature for
# the approach features, so a unit on another refrigerant gets an offset, which calibration removes.
_SAT_A = 10.50
_SAT_B = 2380.0


class Mode(IntEnum):
    """Operating mode of one reading."""

    OFF = 0
    RUN = 1
    START = 2  # the first readings of a run: inrush current, pressures still moving
    DEFROST = 3
    RECOVERY = 4  # pull-down after a defrost: warm cabinet, long run, high suction pressure
    DOOR = 5
    RESTOCK = 6  # pull-down after a long door opening (a delivery: warm goods went in)
    UNKNOWN = 7  # the run flag itself could not be read


# Plain ints of the modes for the per-reading arithmetic (enum attribute lookups cost microseconds).
_OFF, _RUN, _START, _DEFROST, _RECOVERY, _DOOR, _RESTOCK, _UNKNOWN = (int(m) for m in Mode)
_CONTROLLED = frozenset({_OFF, _RUN, _START, _DOOR})  # the thermostat is in charge


@dataclass(frozen=True)
class Timing:
    """How long the operating modes last, in machine seconds (the model's manifest carries these)."""

    start_transient_s: float = 90.0  # pressures settle with ~8 s and ~25 s time constants
    # A pull-down (after a defrost, after a delivery) lasts at least its minimum, then until the cabinet
    # is back to its typical temperature from before the event, and at most its maximum.
    defrost_min_s: float = 1200.0
    defrost_recovery_s: float = 3600.0
    restock_door_s: float = 100.0  # a door open this long is a delivery, not a customer
    restock_min_s: float = 900.0
    restock_recovery_s: float = 3600.0

    def readings(self, seconds: float, seconds_per_reading: float) -> int:
        return math.ceil(seconds / seconds_per_reading - 1e-9)


def saturation_temp(pressure_bar: np.ndarray) -> np.ndarray:
    """Saturation temperature (°C) of the refrigerant at an absolute pressure, by Clausius-Clapeyron."""
    return _SAT_B / (_SAT_A - np.log(np.maximum(pressure_bar, 0.05))) - 273.15


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What a window is made of, for deciding whether it can be scored and saying why not."""

    filled: int
    current: Mode  # mode of the latest reading
    running: int  # steady running readings (mode RUN)
    starting: int  # start-transient readings (mode START)
    starts: int  # compressor starts while the thermostat was in charge
    defrost: int  # defrost or post-defrost pull-down readings
    restock: int  # pull-down after a delivery
    door: int
    unknown: int


# A window is scored only when it shows the compressor doing its normal job.
MAX_DOOR_FRACTION = 0.3
MIN_RUNNING_FRACTION = 1 / 6
MAX_UNKNOWN_FRACTION = 0.5
MAX_DISTURBED_FRACTION = 0.5  # defrost or pull-down readings


def unscorable(s: WindowStats, window: int) -> str:
    """Why a window cannot be scored (a sentence for the verdict), or '' when it can.

    Defrost and the pull-down after it, a door held open, a stopped compressor: normal life, but the
    features then describe the shop, not the refrigeration circuit, so the model is not asked.
    """
    if s.filled < window:
        return f"filling window: {s.filled}/{window} readings"
    # Readings of these modes never enter a statistic, so a window that merely contains some of them is
    # still scored from the rest; one that is in them now, or mostly, is not.
    if s.current in (Mode.DEFROST, Mode.RECOVERY) or s.defrost > MAX_DISTURBED_FRACTION * window:
        return "compressor in defrost: not scored"
    if s.current is Mode.RESTOCK or s.restock > MAX_DISTURBED_FRACTION * window:
        return "pull-down after a long door opening: not scored"
    if s.unknown > MAX_UNKNOWN_FRACTION * window:
        return "run status unknown: not scored"
    if s.door > MAX_DOOR_FRACTION * window:
        return "door open: not scored"
    # Start readings count here: short runs are all start transient, and a short-cycling compressor is
    # exactly what must be scored (from its starts and on-ratio; the steady features are then absent).
    if s.running + s.starting < max(3, MIN_RUNNING_FRACTION * window):
        return "compressor stopped: too few running readings to score"
    return ""


class FeatureWindow:
    """Ring buffer of the last ``window`` readings with their operating modes, and the features over it."""

    def __init__(self, window: int, seconds_per_reading: float, timing: Timing | None = None) -> None:
        if window < 4:
            raise ValueError(f"window must be at least 4 readings, got {window}")
        if not seconds_per_reading > 0:
            raise ValueError(f"seconds_per_reading must be positive, got {seconds_per_reading}")
        self.window = window
        self.timing = t = timing or Timing()
        spr = seconds_per_reading
        self.transient_readings = t.readings(t.start_transient_s, spr)
        self.recovery_min_readings = t.readings(t.defrost_min_s, spr)
        self.recovery_readings = t.readings(t.defrost_recovery_s, spr)
        self.restock_door_readings = max(1, t.readings(t.restock_door_s, spr))
        self.restock_min_readings = t.readings(t.restock_min_s, spr)
        self.restock_readings = t.readings(t.restock_recovery_s, spr)
        self._data = np.full((window, len(POINTS)), np.nan)
        self._mode = np.full(window, Mode.UNKNOWN, dtype=np.int8)
        self._start = np.zeros(window, dtype=bool)
        self._pos = 0
        self._count = 0
        self._was_running = False
        self._since_start = math.inf
        self._since_defrost = math.inf
        self._since_restock = math.inf
        self._door_run = 0
        self._cabinet_ref = -math.inf  # typical cabinet temperature before the last defrost or delivery
        self._features = np.full(len(FEATURES), np.nan)
        # Mode counts and controlled starts, kept up to date by push: stats() is O(1).
        self._counts = [0] * len(Mode)
        self._ctl_starts = 0
        self._on_door = np.zeros(window, dtype=bool)  # door open while the compressor runs
        self._door_on = 0
        # One matrix for every median of a window (statistics × readings, NaN = not part of that
        # statistic), sorted once per window along its contiguous rows; with the count of values in each.
        self._med = np.full((_N_MEDIANS, window), np.nan)
        self._stat_valid = np.zeros((_N_MEDIANS, window), dtype=bool)
        self._valid = np.zeros(_N_MEDIANS, dtype=np.int64)
        self._base = np.arange(_N_MEDIANS) * window  # flat index of each statistic's first value

    @property
    def full(self) -> bool:
        return self._count >= self.window

    @property
    def filled(self) -> int:
        return min(self._count, self.window)

    def reset(self) -> None:
        self._data.fill(np.nan)
        self._mode.fill(Mode.UNKNOWN)
        self._start.fill(False)
        self._pos = self._count = 0
        self._was_running = False
        self._since_start = self._since_defrost = self._since_restock = math.inf
        self._door_run = 0
        self._counts = [0] * len(Mode)
        self._ctl_starts = 0
        self._on_door.fill(False)
        self._door_on = 0
        self._med.fill(np.nan)
        self._stat_valid.fill(False)
        self._valid.fill(0)

    def push(self, values: Mapping[str, float], missing: frozenset[str] | set[str] = frozenset()) -> Mode:
        """Add one reading (missing or out-of-range points become NaN) and return its operating mode."""
        return self.push_row(to_row(values, missing))

    def push_row(self, reading: np.ndarray, checked: bool = False) -> Mode:
        """:meth:`push` for a reading already laid out in ``POINTS`` order (NaN = missing);
        ``checked``: out-of-range values are already NaN (the sensor monitor did it)."""
        row = self._data[self._pos]
        row[:] = reading
        if not checked:
            # A value outside its physical range is a sensor error; treat it like a missing value.
            with np.errstate(invalid="ignore"):
                row[(row < _LO) | (row > _HI)] = np.nan
        p = self._pos
        if self._count >= self.window:  # the slot's previous reading leaves the window
            old = int(self._mode[p])
            self._counts[old] -= 1
            self._ctl_starts -= bool(self._start[p]) and old in _CONTROLLED
            self._door_on -= bool(self._on_door[p])
        mode = self._label(row)
        self._mode[p] = mode
        self._counts[mode] += 1
        self._ctl_starts += bool(self._start[p]) and mode in _CONTROLLED
        door_on = mode == _DOOR and row[_RUNNING] >= 0.5
        self._on_door[p] = door_on
        self._door_on += door_on
        stat = _stat_row(row.tolist(), mode)
        valid = self._stat_valid[:, p]
        self._valid -= valid
        self._med[:, p] = stat
        valid[:] = [v == v for v in stat]  # NaN is the only value not equal to itself
        self._valid += valid
        self._pos = (p + 1) % self.window
        self._count += 1
        return mode

    def _label(self, row: np.ndarray) -> Mode:
        running, defrost, door = row[COL["running"]], row[COL["defrost"]], row[COL["door_open"]]
        self._since_start += 1
        self._since_defrost += 1
        self._since_restock += 1
        self._door_run = self._door_run + 1 if door >= 0.5 else 0
        if (self._door_run == 1 and self._since_restock > self.restock_readings) or (
            defrost >= 0.5 and self._since_defrost > 1
        ):
            self._cabinet_ref = self._typical_cabinet()
        cabinet_back = row[COL["cabinet_temp"]] <= self._cabinet_ref
        if self._door_run >= self.restock_door_readings:
            # Seen open this long, it is a delivery; the pull-down is counted from when the door closes.
            self._since_restock = 0
        elif self._since_restock >= self.restock_min_readings and cabinet_back:
            self._since_restock = math.inf  # the cabinet is back where it was: the pull-down is over
        if defrost < 0.5 and self._since_defrost >= self.recovery_min_readings and cabinet_back:
            self._since_defrost = math.inf
        started = False
        if not math.isnan(running):
            is_running = running >= 0.5
            started = is_running and not self._was_running
            self._was_running = is_running
            if started:
                self._since_start = 0
        self._start[self._pos] = started
        if defrost >= 0.5:
            self._since_defrost = 0
            return Mode.DEFROST
        if self._since_defrost <= self.recovery_readings:
            return Mode.RECOVERY
        if math.isnan(running):
            return Mode.UNKNOWN
        if door >= 0.5:
            return Mode.DOOR
        if self._since_restock <= self.restock_readings:
            return Mode.RESTOCK
        if running < 0.5:
            return Mode.OFF
        return Mode.START if self._since_start < self.transient_readings else Mode.RUN

    def _controlled(self) -> np.ndarray:
        """Readings where the thermostat is in charge: off, running, start, or door briefly open."""
        return (self._mode <= Mode.START) | (self._mode == Mode.DOOR)

    def _typical_cabinet(self) -> float:
        normal = self._mode <= Mode.START  # off, running, start: the thermostat in charge
        if not normal.any():
            return -math.inf  # nothing to compare with: keep the full pull-down
        typical = float(_median(self._data[normal][:, [COL["cabinet_temp"]]])[0])
        return typical if math.isfinite(typical) else -math.inf

    def stats(self) -> WindowStats:
        c = self._counts
        return WindowStats(
            filled=self.filled,
            current=Mode(self._mode[self._pos - 1]) if self._count else Mode.UNKNOWN,
            running=c[_RUN],
            starting=c[_START],
            starts=self._ctl_starts,
            defrost=c[_DEFROST] + c[_RECOVERY],
            restock=c[_RESTOCK],
            door=c[_DOOR],
            unknown=c[_UNKNOWN],
        )

    def unscorable(self) -> str:
        """Why the current window cannot be scored, or '' when it can (see :func:`unscorable`)."""
        c, w = self._counts, self.window
        current = int(self._mode[self._pos - 1]) if self._count else _UNKNOWN
        if (  # the common case, decided from the counts without building WindowStats
            self._count >= w
            and current in _CONTROLLED
            and current != _DOOR
            and c[_DEFROST] + c[_RECOVERY] <= MAX_DISTURBED_FRACTION * w
            and c[_RESTOCK] <= MAX_DISTURBED_FRACTION * w
            and c[_UNKNOWN] <= MAX_UNKNOWN_FRACTION * w
            and c[_DOOR] <= MAX_DOOR_FRACTION * w
            and c[_RUN] + c[_START] >= max(3, MIN_RUNNING_FRACTION * w)
        ):
            return ""
        return unscorable(self.stats(), w)

    def features(self) -> np.ndarray:
        """The feature vector of the current window (NaN where a feature has no readings to come from).

        Every median is taken in one sort: a (window × statistics) matrix, filled row by row as readings
        arrive, holds each statistic's readings in its column and NaN elsewhere (readings of other modes,
        missing values), so one sort replaces a median per mode and the derived quantities are computed
        once per reading instead of once per window.
        Returns an internal array that the next call overwrites; copy it to keep it.
        """
        f = self._features
        c = self._counts
        med = _masked_median(self._med, self._valid, self._base)
        f[: _N_RUN + 7] = med[: _N_RUN + 7]
        f[FEATURE_INDEX["suction_pressure_off"]] = med[_M_OFF] if c[_OFF] >= 2 else math.nan
        # Duty cycle over the readings where the thermostat is in charge (not defrost, not unknown).
        controlled = c[_OFF] + c[_RUN] + c[_START] + c[_DOOR]
        if controlled:
            n_on = c[_RUN] + c[_START] + self._door_on
            starts = self._ctl_starts
            f[FEATURE_INDEX["on_ratio"]] = n_on / controlled
            f[FEATURE_INDEX["starts"]] = starts
            # Mean run length as a fraction of the window; a run cut by the window edge counts as one.
            f[FEATURE_INDEX["run_length"]] = n_on / max(starts, 1) / self.window
        else:
            f[FEATURE_INDEX["on_ratio"] : FEATURE_INDEX["run_length"] + 1] = np.nan
        f[FEATURE_INDEX["cabinet_temp"]] = med[_M_CAB]
        f[FEATURE_INDEX["ambient_temp"]] = med[_M_AMB]
        return f


def _stat_row(r: list[float], mode: int) -> list[float]:
    """One reading laid out for the median matrix: its value in every statistic its mode belongs to,
    NaN elsewhere. Done once per reading, in plain floats (a handful of scalars), so a window's features
    are one sort of the matrix."""
    nan = math.nan
    m = [nan] * _N_MEDIANS
    if mode == _RUN:
        sp, dp, evap = r[_SP], r[_DP], r[_EVAP]
        ratio = dp / max(sp, 0.05)  # absolute pressures; max() keeps a NaN first argument
        tsat_d = _SAT_B / (_SAT_A - math.log(max(dp, 0.05))) - 273.15
        m[:_N_RUN] = [r[i] for i in _RUN_COL_LIST]
        m[_N_RUN : _N_RUN + 7] = [
            ratio,
            r[_SUCT_T] - evap,
            tsat_d - r[_AMB],
            r[_DIS_T] - tsat_d,
            r[_CUR] / ratio if ratio else nan,
            r[_VPEAK] / max(r[_VRMS], 1e-3),
            r[_CAB] - evap,
        ]
    elif mode == _OFF:
        m[_M_OFF] = r[_SP]
    if mode in _CONTROLLED:
        m[_M_CAB] = r[_CAB]
    m[_M_AMB] = r[_AMB]
    return m


def _masked_median(m: np.ndarray, n: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Row medians of ``m`` ignoring NaN (np.sort puts NaN last), given ``n`` values per row and the
    flat index of each row's start; NaN for a row without values."""
    s = np.sort(m, axis=1).ravel()
    med = 0.5 * (s[base + np.maximum(n - 1, 0) // 2] + s[base + np.maximum(n, 1) // 2 - (n == 0)])
    med[n == 0] = np.nan
    return med


def to_row(
    values: Mapping[str, float],
    missing: frozenset[str] | set[str] = frozenset(),
    points: tuple[str, ...] = POINTS,
) -> np.ndarray:
    """A reading as a row in ``points`` order; missing or absent points are NaN."""
    row = np.array([values.get(p, math.nan) for p in points], dtype=float)
    if missing:
        for i, p in enumerate(points):
            if p in missing:
                row[i] = math.nan
    return row


def _median(rows: np.ndarray) -> np.ndarray:
    """Column medians ignoring NaN (a missing value); NaN for an all-missing column, without warnings."""
    med = np.median(rows, axis=0)
    if np.isnan(med).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(rows, axis=0)
    return med
