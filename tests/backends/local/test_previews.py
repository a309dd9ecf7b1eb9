"""Partial images from the pipeline: a latent preview after the chosen steps, to the request that
asked, in order and before its finished image; the finished image is the same with or without."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable

import pytest
import torch
from PIL import Image

from backends.local.batching import DynamicBatcher
from backends.local.encoding import RawImage
from backends.local.partial_images import PreviewRequest
from backends.local.pipeline import LightningPipeline
from backends.local.preview import LatentPreviewer
from core.previews import preview_steps
from core.request import ImageRequest
from tests.backends.local.conftest import SIDE
from tests.backends.local.image_compare import same_up_to_rounding

MakeRequest = Callable[..., ImageRequest]


@pytest.mark.parametrize(("steps", "wanted", "after"), [
    (4, 1, (2,)), (4, 2, (1, 3)), (4, 3, (1, 2, 3)), (8, 3, (2, 4, 6)), (2, 3, (1,)), (1, 3, ()),
])
def test_partial_images_are_spread_over_the_steps_before_the_last(steps: int, wanted: int,
                                                                  after: tuple[int, ...]) -> None:
    assert preview_steps(steps, wanted) == after


def test_the_preview_map_reproduces_a_linear_vae() -> None:
    """Fitted against a VAE that is exactly linear per latent pixel, the map recovers it."""

    class LinearVae:
        device = torch.device("cpu")
        mixing = torch.tensor([[0.03, -0.02, 0.01], [0.01, 0.02, -0.03], [-0.01, 0.005, 0.02], [0.005, 0.01, 0.01]])
        """Small enough that random latents never push a pixel past 0 or 1 (no clamping)."""

        def decode(self, latents: torch.Tensor) -> list[RawImage]:
            rgb = (torch.einsum("nchw,cd->nhwd", latents, self.mixing) + 0.5).clamp(0, 1)
            rgb = rgb.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2)
            pixels = rgb.mul(255).round().to(torch.uint8)
            return [RawImage(pixels.shape[2], pixels.shape[1], image.numpy().tobytes()) for image in pixels]

    previewer = LatentPreviewer.fit(LinearVae(), channels=4)  # type: ignore[arg-type]
    latent = torch.full((4, 2, 3), 4.0)
    preview = previewer.preview(latent, sigma=0.0)

    assert preview.size == (3, 2)
    for channel in range(3):
        expected = round((4.0 * LinearVae.mixing.sum(dim=0)[channel].item() + 0.5) * 255)
        assert abs(preview.rgb[channel] - expected) <= 2


def test_previews_come_after_the_asked_steps_and_leave_the_image_unchanged(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest
) -> None:
    shown: list[tuple[str, RawImage]] = []
    watched, unwatched = make_request(steps=4, seed=3), make_request(steps=4, seed=4)

    with_previews = tiny_pipeline.run_with_previews(
        [unwatched, watched], [None, PreviewRequest((1, 3), lambda image: shown.append(("watched", image)))])
    without = tiny_pipeline.run([unwatched, watched])

    assert [who for who, _ in shown] == ["watched", "watched"]
    assert {image.size for _, image in shown} == {(SIDE // 8, SIDE // 8)}
    assert shown[0][1].rgb != shown[1][1].rgb  # two different steps
    for got, expected in zip(with_previews, without, strict=True):
        assert all(same_up_to_rounding(a, b) for a, b in zip(got, expected, strict=True))


class Previews:
    """A ``PreviewSink`` that keeps what it is offered."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.images: list[bytes] = []

    def offer(self, image: bytes) -> None:
        self.images.append(image)


@pytest.fixture
async def batcher(tiny_pipeline: LightningPipeline) -> AsyncIterator[DynamicBatcher]:
    batcher = DynamicBatcher(tiny_pipeline, max_batch_size=4, batch_window_ms=100.0)
    yield batcher
    await batcher.aclose()


async def test_the_batcher_offers_partial_images_at_full_size_before_the_result(
    batcher: DynamicBatcher, make_request: MakeRequest
) -> None:
    previews = Previews(wanted=3)
    order: list[str] = []
    original_offer = previews.offer
    previews.offer = lambda image: (order.append("partial"), original_offer(image))  # type: ignore[method-assign]

    async def watched() -> None:
        await batcher.submit(make_request(steps=4, output_format="jpeg"), previews=previews)
        order.append("result")

    quiet = Previews(wanted=0)
    await asyncio.gather(watched(), batcher.submit(make_request(steps=4, seed=9), previews=quiet))

    assert batcher.stats.batch_sizes == [2]  # a watched request still shares its batch
    assert order == ["partial", "partial", "partial", "result"]
    assert quiet.images == []
    for data in previews.images:
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.size) == ("JPEG", (SIDE, SIDE))


async def test_a_one_step_request_has_no_partial_images(batcher: DynamicBatcher, make_request: MakeRequest) -> None:
    previews = Previews(wanted=2)
    await batcher.submit(make_request(steps=1), previews=previews)
    assert previews.images == []
