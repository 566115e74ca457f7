"""segmint.plugins."""

__all__: list[str] = []
