"""Hard-braking events: separate spells of deceleration harder than a threshold."""
from __future__ import annotations

import numpy as np


def hard_braking_events(t: np.ndarray, lon_accel: np.ndarray, threshold: float = -4.05, merge_s: float = 1.0) -> int:
    """Count spells with smoothed longitudinal acceleration below `threshold` [m/s²].

    The default is nuPlan's comfortable lower bound on longitudinal acceleration
    (ego_is_comfortable: −4.05 m/s²). Spells less than `merge_s` [s] apart count as one event.
    """
    hard = np.asarray(lon_accel) < threshold
    if not hard.any():
        return 0
    t = np.asarray(t)
    starts = np.nonzero(hard & ~np.concatenate([[False], hard[:-1]]))[0]
    ends = np.nonzero(hard & ~np.concatenate([hard[1:], [False]]))[0]
    events = 1
    for k in range(1, len(starts)):
        events += t[starts[k]] - t[ends[k - 1]] >= merge_s
    return int(events)
