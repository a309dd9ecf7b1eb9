"""The random-weight model of the GPU check is SDXL base's architecture, built without allocating it."""

from __future__ import annotations

import torch

from backends.local.random_model import SDXL, build_parts


def test_full_size_parts_have_sdxl_base_s_parameter_counts_and_wiring() -> None:
    parts = build_parts(SDXL, device="meta")  # shapes only: no 10 GB of random numbers
    counts = {name: sum(p.numel() for p in parts[name].parameters())
              for name in ("unet", "vae", "text_encoder", "text_encoder_2")}
    assert counts == {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
                      "text_encoder_2": 694_659_840}
    with torch.device("meta"):
        ids = torch.zeros(1, 77, dtype=torch.long)
        first = parts["text_encoder"](ids, output_hidden_states=True).hidden_states[-2]
        second = parts["text_encoder_2"](ids, output_hidden_states=True)
        context = torch.cat([first, second.hidden_states[-2]], dim=-1)
        out = parts["unet"](torch.randn(1, 4, 128, 128), torch.tensor(999), encoder_hidden_states=context,
                            added_cond_kwargs={"text_embeds": second.text_embeds, "time_ids": torch.randn(1, 6)})
        assert out.sample.shape == (1, 4, 128, 128)
        assert parts["vae"].decode(out.sample).sample.shape == (1, 3, 1024, 1024)
