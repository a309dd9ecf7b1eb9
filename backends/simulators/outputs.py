"""From a vendor-neutral ``Generation`` to what a vendor answers: images inline, URLs, or a job.

Output faults are honoured here once for every vendor: ``blank_image`` and ``nsfw`` render
solid black, ``output_404`` publishes URLs that answer 404, ``stuck_queued`` and
``fail_midway`` decide a job's fate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends.simulators.asgi import SimRequest, SimResponse
from backends.simulators.fields import MAX_SEED
from backends.simulators.files import FILES_PREFIX
from backends.simulators.jobs import Fate, Job, JobTiming
from backends.simulators.protocol import Call
from backends.simulators.render import RenderedImage, RenderSpec
from backends.simulators.state import SimulatorState

_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class Generation:
    """What a vendor was asked to draw, once its own field names are read."""

    prompt: str
    seed: int
    width: int
    height: int
    steps: int = 4
    n: int = 1
    init_image: bytes | None = None
    strength: float = 0.0


def render_specs(call: Call, generation: Generation) -> list[RenderSpec]:
    """One spec per image; image ``i`` uses seed + i, as batch samplers do."""
    return [
        RenderSpec(
            vendor=call.vendor.name,
            prompt=generation.prompt,
            seed=(generation.seed + index) % (MAX_SEED + 1),
            width=generation.width,
            height=generation.height,
            fmt=call.vendor.image_format,
            steps=generation.steps,
            blank=call.faulted("blank_image", "nsfw"),
            init_image=generation.init_image,
            strength=generation.strength,
            realistic=call.config.realistic_images,
        )
        for index in range(generation.n)
    ]


async def inline_images(call: Call, generation: Generation) -> list[RenderedImage]:
    """Rendered images for a base64 answer."""
    return [await call.state.renders.obtain(spec) for spec in render_specs(call, generation)]


def publish(call: Call, generation: Generation) -> list[str]:
    """Absolute URLs the images will be served at (404 under an ``output_404`` fault)."""
    missing = call.faulted("output_404")
    files = call.state.files
    ttl = call.config.url_ttl_s
    return [call.request.base_url + files.add(spec, ttl, missing=missing) for spec in render_specs(call, generation)]


def start_job(call: Call, job_id: str, generation: Generation, *, fate: Fate | None = None, **extra: Any) -> Job:
    """Store a job for the request's ``input``, its outputs published, its fate set by the fault
    (or by the vendor, ``fate``)."""
    if fate is None:
        fate = "stuck" if call.faulted("stuck_queued") else "fail" if call.faulted("fail_midway") else "succeed"
    job = Job(
        id=job_id,
        input=call.request.json()["input"],
        outputs=tuple(publish(call, generation)),
        timing=JobTiming.of(call.config),
        fate=fate,
        nsfw=call.faulted("nsfw"),
        extra=extra,
    )
    return call.state.jobs.add(job, len(call.request.body))


async def serve_file(request: SimRequest, state: SimulatorState) -> SimResponse:
    """``GET /_sim/files/{name}``: the image, or a bucket-style 404 when gone."""
    stored = state.files.get(request.path.removeprefix(FILES_PREFIX))
    if stored is None:
        return SimResponse(404, b"Not Found", content_type="text/plain")
    image = await state.renders.obtain(stored.spec)
    return SimResponse(200, image.data, content_type=_CONTENT_TYPES[stored.spec.fmt])
