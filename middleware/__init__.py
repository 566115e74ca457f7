"""segmint.middleware."""

__all__: list[str] = []
