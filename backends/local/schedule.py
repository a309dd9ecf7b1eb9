"""Image-to-image on the distilled schedule: which of a checkpoint's timesteps run for a strength.

A Lightning UNet was distilled for exactly the trailing timesteps of its step count (4 steps:
999, 749, 499, 249) and for no other. Image-to-image at strength ``s`` noises the init image to
some timestep and denoises from there, so it can start only at one of those timesteps: with
``steps`` steps it runs the last ``k`` of them, for ``k / steps`` the strength actually served.
``k`` is ``strength * steps`` rounded to the nearest whole step (halves up), at least 1, so the
strengths served exactly are::

    steps 1    1.0                       (the 1-step model always starts from pure noise)
    steps 2    0.5, 1.0
    steps 4    0.25, 0.5, 0.75, 1.0
    steps 8    0.125, 0.25, ..., 1.0     (multiples of 1/8)

Any other strength is rounded visibly: the worker's answer carries the strength it served, and
the rounding is logged. Neither is the schedule stretched (4 steps at 0.1 used to run t=99, a
timestep no checkpoint was distilled for): 0.1 with 4 steps runs one step from t=249.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Img2ImgSchedule:
    """``denoising_steps`` of the ``steps``-step checkpoint's distilled timesteps, the last ones."""

    steps: int
    denoising_steps: int
    requested_strength: float

    @property
    def strength(self) -> float:
        """The strength served: exact in binary for 1, 2, 4 and 8 steps, so diffusers'
        ``int(steps * strength)`` gives back ``denoising_steps`` exactly."""
        return self.denoising_steps / self.steps

    @property
    def rounded(self) -> bool:
        return not math.isclose(self.strength, self.requested_strength, abs_tol=1e-9)


def img2img_schedule(steps: int, strength: float) -> Img2ImgSchedule:
    """The distilled steps that serve ``strength`` most closely (at least one, at most all)."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    denoising = min(steps, max(1, math.floor(strength * steps + 0.5)))
    return Img2ImgSchedule(steps, denoising, strength)


def exact_strengths(steps: int) -> list[float]:
    """The strengths served without rounding at ``steps`` steps."""
    return [k / steps for k in range(1, steps + 1)]
