"""The old import path of the hook markers, kept because plugins written for it import
``hookimpl`` from here. The hooks live in ``segmint.engine.hooks.specs``; new code imports
``from segmint.engine import hookimpl``."""

from .hooks.specs import PROJECT_NAME, hookimpl, hookspec

__all__ = ["hookspec", "hookimpl", "PROJECT_NAME"]
