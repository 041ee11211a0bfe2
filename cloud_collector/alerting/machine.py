"""The state machine every rule runs per device: Normal → Pending → Firing → Recovering → Normal.

    normal      --fires-->                      pending (or firing at once when for_s = 0)
    pending     --fires for for_s-->            firing        [open the alert]
    pending     --stops firing-->               normal        (a blip: nobody is told)
    firing      --clears-->                     recovering (or normal at once when clear_for_s = 0)
    recovering  --clears for clear_for_s-->     normal        [clear the alert]
    recovering  --anything but "clears"-->      firing        (back above the clear threshold)

"Fires" and "clears" are separate conditions (hysteresis): a threshold rule fires above ``threshold`` and
clears only below ``clear_threshold``; in between nothing changes. The timer calls :func:`elapse` so a
pending rule fires (and a recovering one clears) without waiting for the next message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Phase(StrEnum):
    NORMAL = "normal"
    PENDING = "pending"
    FIRING = "firing"
    RECOVERING = "recovering"


class Action(StrEnum):
    NONE = "none"
    OPEN = "open"  # raise the alert (or bump it when it is already active)
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Step:
    phase: Phase
    since: datetime
    action: Action = Action.NONE


def step(
    phase: Phase,
    since: datetime,
    *,
    fires: bool,
    clears: bool,
    hold: timedelta,
    clear_hold: timedelta,
    now: datetime,
) -> Step:
    """The next state given one new observation at ``now``."""
    if phase == Phase.NORMAL:
        if not fires:
            return Step(phase, since)
        return Step(Phase.FIRING, now, Action.OPEN) if hold <= timedelta(0) else Step(Phase.PENDING, now)
    if phase == Phase.PENDING:
        if not fires:
            return Step(Phase.NORMAL, now)
        return Step(Phase.FIRING, now, Action.OPEN) if now - since >= hold else Step(phase, since)
    if phase == Phase.FIRING:
        if clears:
            if clear_hold <= timedelta(0):
                return Step(Phase.NORMAL, now, Action.CLEAR)
            return Step(Phase.RECOVERING, now)
        return Step(phase, since, Action.OPEN if fires else Action.NONE)
    # RECOVERING
    if not clears:
        return Step(Phase.FIRING, now, Action.OPEN if fires else Action.NONE)
    return Step(Phase.NORMAL, now, Action.CLEAR) if now - since >= clear_hold else Step(phase, since)


def elapse(phase: Phase, since: datetime, *, hold: timedelta, clear_hold: timedelta, now: datetime) -> Step:
    """The timer's view: nothing new arrived, the last observation still holds."""
    if phase == Phase.PENDING and now - since >= hold:
        return Step(Phase.FIRING, now, Action.OPEN)
    if phase == Phase.RECOVERING and now - since >= clear_hold:
        return Step(Phase.NORMAL, now, Action.CLEAR)
    return Step(phase, since)
