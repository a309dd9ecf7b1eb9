"""The HTTP surface: OpenAI's Images API, models, health, metrics, image downloads."""
