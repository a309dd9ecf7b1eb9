"""boltgate: one OpenAI-compatible endpoint for SDXL-Lightning across vendors and local GPUs."""
