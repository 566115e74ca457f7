"""A plugin with a misspelled hook name: loading it must fail loudly, naming it."""

from segmint.engine import hookimpl


@hookimpl
def segmint_register_strategy():  # the hook is segmint_register_strategies
    return []
