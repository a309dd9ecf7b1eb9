"""The diffusers pipeline on the tiny model: every step count, image-to-image, seeds, lazy UNets."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from backends.local.checkpoints import checkpoint_for
from backends.local.config import LocalBackendConfig
from backends.local.encoding import RawImage, encode_image
from backends.local.pipeline import LightningPipeline
from backends.local.schedule import exact_strengths, img2img_schedule
from core.errors import InvalidRequest
from core.request import ImageRequest
from tests.backends.local.conftest import SIDE
from tests.backends.local.image_compare import as_pil, clearly_different, same_up_to_rounding

MakeRequest = Callable[..., ImageRequest]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_generates_with_the_checkpoint_and_schedule_of_the_step_count(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest, steps: int
) -> None:
    [images] = tiny_pipeline.run([make_request(steps=steps)])
    assert [image.size for image in images] == [(SIDE, SIDE)]
    pipes = tiny_pipeline.for_steps(steps)
    assert pipes.checkpoint == checkpoint_for(steps)
    assert pipes.path.name == checkpoint_for(steps).filename
    scheduler = pipes.scheduler
    assert type(scheduler).__name__ == "EulerDiscreteScheduler"
    assert scheduler.config.timestep_spacing == "trailing"
    assert scheduler.config.prediction_type == ("sample" if steps == 1 else "epsilon")
    assert len(scheduler.timesteps) == steps  # the call ran exactly the distilled step count
    weights = load_file(str(pipes.path))["conv_in.weight"]
    assert torch.equal(pipes.text_to_image.unet.state_dict()["conv_in.weight"], weights)


def test_the_same_seed_gives_the_same_bytes(tiny_pipeline: LightningPipeline, make_request: MakeRequest) -> None:
    request = make_request(seed=1234, steps=2)
    [[first]] = tiny_pipeline.run([request])
    [[again]] = tiny_pipeline.run([request])
    assert encode_image(first, "png") == encode_image(again, "png")


def test_different_seeds_give_different_images(tiny_pipeline: LightningPipeline, make_request: MakeRequest) -> None:
    [[one]] = tiny_pipeline.run([make_request(seed=1)])
    [[two]] = tiny_pipeline.run([make_request(seed=2)])
    assert clearly_different(one, two)


def test_adjacent_seeds_never_share_an_image(tiny_pipeline: LightningPipeline, make_request: MakeRequest) -> None:
    [pair] = tiny_pipeline.run([make_request(seed=6, n=2)])
    [[seven]] = tiny_pipeline.run([make_request(seed=7)])
    [[six]] = tiny_pipeline.run([make_request(seed=6)])
    assert clearly_different(pair[0], pair[1])
    assert clearly_different(pair[1], seven)  # seeding seed + i made these two the same image
    assert same_up_to_rounding(pair[0], six)  # image 0 is the request's own seed


def test_image_to_image_starts_from_the_init_image(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest
) -> None:
    red, blue = (_png(Image.new("RGB", (SIDE, SIDE), colour)) for colour in ((230, 20, 20), (20, 20, 230)))
    [[from_red]] = tiny_pipeline.run([make_request(steps=2, init_image=red, strength=0.3)])
    [[from_blue]] = tiny_pipeline.run([make_request(steps=2, init_image=blue, strength=0.3)])
    assert from_red.size == (SIDE, SIDE)
    assert clearly_different(from_red, from_blue)
    red_pixels = as_pil(from_red).resize((1, 1)).getpixel((0, 0))
    assert isinstance(red_pixels, tuple) and red_pixels[0] > red_pixels[2]


def test_image_to_image_with_too_few_steps_for_its_strength_still_runs(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest
) -> None:
    init = _png(Image.new("RGB", (300, 280), (90, 160, 40)))
    [images] = tiny_pipeline.run([make_request(steps=1, init_image=init, strength=0.6, n=2)])
    assert [image.size for image in images] == [(SIDE, SIDE)] * 2


def _timesteps_run(pipeline: LightningPipeline, steps: int, request: ImageRequest) -> list[int]:
    """The timesteps the UNet of ``steps`` was called at while serving ``request``."""
    seen: list[int] = []
    unet = pipeline.for_steps(steps).image_to_image.unet
    hook = unet.register_forward_pre_hook(lambda module, args: seen.append(int(args[1])))
    try:
        pipeline.run([request])
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_image_to_image_runs_only_on_the_distilled_timesteps(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest, steps: int
) -> None:
    scheduler = tiny_pipeline.for_steps(steps).scheduler
    scheduler.set_timesteps(steps)
    distilled = [int(t) for t in scheduler.timesteps]
    init = _png(Image.new("RGB", (SIDE, SIDE), (90, 160, 40)))
    for strength in (0.0, 0.1, 0.3, 0.5, 0.6, 0.75, 0.9, 1.0):
        expected = img2img_schedule(steps, strength).denoising_steps
        seen = _timesteps_run(tiny_pipeline, steps, make_request(steps=steps, init_image=init, strength=strength))
        assert seen == distilled[steps - expected:], (steps, strength)


@pytest.mark.parametrize(("steps", "strength", "runs", "served"), [
    (4, 0.6, 2, 0.5),
    (4, 0.75, 3, 0.75),
    (4, 0.9, 4, 1.0),
    (4, 0.1, 1, 0.25),
    (4, 0.0, 1, 0.25),
    (1, 0.6, 1, 1.0),
    (2, 0.3, 1, 0.5),
    (8, 0.6, 5, 0.625),
    (8, 1.0, 8, 1.0),
])
def test_strength_rounds_to_the_nearest_distilled_step(steps: int, strength: float, runs: int, served: float) -> None:
    schedule = img2img_schedule(steps, strength)
    assert (schedule.denoising_steps, schedule.strength) == (runs, served)
    assert schedule.rounded == (strength != served)


def test_every_exact_strength_is_served_unrounded() -> None:
    assert exact_strengths(4) == [0.25, 0.5, 0.75, 1.0]
    for steps in (1, 2, 4, 8):
        for strength in exact_strengths(steps):
            schedule = img2img_schedule(steps, strength)
            assert not schedule.rounded and int(steps * schedule.strength) == schedule.denoising_steps


def test_strengths_a_step_apart_give_different_images(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest
) -> None:
    init = _png(Image.new("RGB", (SIDE, SIDE), (90, 160, 40)))
    [[three_quarters]] = tiny_pipeline.run([make_request(steps=4, init_image=init, strength=0.75)])
    [[nine_tenths]] = tiny_pipeline.run([make_request(steps=4, init_image=init, strength=0.9)])
    assert clearly_different(three_quarters, nine_tenths)


def test_a_batch_must_share_size_and_steps(tiny_pipeline: LightningPipeline, make_request: MakeRequest) -> None:
    with pytest.raises(ValueError, match="mixes"):
        tiny_pipeline.run([make_request(steps=1), make_request(steps=2)])


def test_every_preloaded_step_count_is_loaded_at_start_and_no_other_ever(
    tiny_config: LocalBackendConfig, make_request: MakeRequest
) -> None:
    pipeline = LightningPipeline.load(tiny_config.model_copy(update={"preload_steps": (2, 8)}))
    assert pipeline.loaded_steps == (2, 8)
    with pytest.raises(InvalidRequest) as refused:
        pipeline.run([make_request(steps=4)])
    assert (refused.value.status_code, refused.value.code, refused.value.param) == (404, "steps_not_loaded", "steps")
    assert pipeline.loaded_steps == (2, 8)  # nothing loaded on the serving thread
    assert (pipeline.device, pipeline.memory_bytes()) == ("cpu", 0)


def test_the_vae_keeps_its_dtype_and_hands_over_rgb_bytes(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest
) -> None:
    vae = tiny_pipeline.components.vae
    decoder_dtypes: list[torch.dtype] = []
    hook = vae.decoder.register_forward_pre_hook(lambda module, args: decoder_dtypes.append(args[0].dtype))
    try:
        [images] = tiny_pipeline.run([make_request(n=2)])
    finally:
        hook.remove()
    assert all(isinstance(image, RawImage) and len(image.rgb) == SIDE * SIDE * 3 for image in images)
    assert decoder_dtypes == [torch.float32] and vae.dtype == torch.float32


def test_half_precision_latents_decode_without_switching_the_vae_s_dtype(tiny_pipeline: LightningPipeline) -> None:
    vae = tiny_pipeline.components.vae
    conversions: list[str] = []
    original_to = vae.to
    vae.to = lambda *args, **kwargs: conversions.append(repr((args, kwargs))) or original_to(*args, **kwargs)
    try:
        images = tiny_pipeline.vae.decode(torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0),
                                                      dtype=torch.float16))
    finally:
        del vae.to
    assert conversions == [] and vae.dtype == torch.float32
    assert images[0].size == (SIDE, SIDE)
