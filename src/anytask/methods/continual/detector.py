"""Shift detection on the running training loss (TAME, Zhu et al. 2022, https://arxiv.org/abs/2210.03869).

A batch is *out of range* when its loss exceeds ``level + sensitivity * spread``, where the
level is a straight line through the last ``window`` in-range losses extrapolated one batch
and the spread is their deviation from that line; ``patience`` consecutive out-of-range batches confirm a shift.
After a shift the window starts empty, so nothing fires during the next ``window`` batches
(the warm-up of a new or re-used expert). ``std`` has a floor (``min_std`` of the mean) so a
loss that has converged to near-constant does not make every wobble a "shift".
"""

from __future__ import annotations

from collections import deque

import numpy as np


class ShiftDetector:
    def __init__(self, *, window: int = 20, sensitivity: float = 3.0, patience: int = 2,
                 min_std: float = 0.05) -> None:
        if window < 2 or patience < 1 or sensitivity <= 0:
            raise ValueError("window >= 2, patience >= 1 and sensitivity > 0 are required")
        self.window, self.sensitivity, self.patience, self.min_std = window, sensitivity, patience, min_std
        self.history: deque[float] = deque(maxlen=window)
        self.suspicious = 0

    @property
    def ready(self) -> bool:
        return len(self.history) == self.window

    def normal_range(self) -> tuple[float, float]:
        """(level, spread) the next loss is expected in: a straight line fitted to the window,
        extrapolated one batch, and the spread of the window around that line. An expert still
        learning has a falling loss; measuring spread around the trend, not around the mean,
        keeps that fall from widening the range until a new task looks normal."""
        values = np.asarray(self.history)
        n = len(values)
        t = np.arange(n)
        slope, intercept = np.polyfit(t, values, 1)
        level = max(float(intercept + slope * n), 0.0)
        residual = float(np.sqrt(((values - (intercept + slope * t)) ** 2).sum() / max(n - 2, 1)))
        # the standard error of predicting one new point from the fitted line
        spread = residual * float(np.sqrt(1 + 1 / n + (n - t.mean()) ** 2 / ((t - t.mean()) ** 2).sum()))
        return level, max(spread, self.min_std * abs(float(values.mean())), 1e-6)

    def out_of_range(self, loss: float) -> bool:
        if not self.ready:
            return False
        mean, std = self.normal_range()
        return loss > mean + self.sensitivity * std

    def update(self, loss: float) -> bool:
        """Feed one batch loss; True when a shift is confirmed (the caller then resets)."""
        if self.out_of_range(loss):
            self.suspicious += 1
            return self.suspicious >= self.patience
        self.suspicious = 0
        self.history.append(float(loss))
        return False

    def reset(self) -> None:
        self.history.clear()
        self.suspicious = 0
