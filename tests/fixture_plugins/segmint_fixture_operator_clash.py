"""A plugin that tries to redefine a built-in filter operator."""

from segmint.engine import hookimpl


@hookimpl
def segmint_filter_operators():
    return {"$gte": lambda operand, path: (lambda value: True)}
