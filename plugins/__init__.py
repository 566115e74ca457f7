"""segmint.plugins: the built-in plugins, ordinary pluggy plugins a user's plugin can replace.

``DEFAULT_PLUGINS`` is the list the plugin manager registers (first, and ``trylast`` so user
plugins win). The engine names no plugin module: segmint's pyproject.toml points the entry
point group ``segmint.builtins`` at this tuple, and ``get_plugin_manager()`` reads it there.
"""

__all__ = ["DEFAULT_PLUGINS"]

#: Built-in plugin modules, in registration order.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "segmint.plugins.catalog_json",
    "segmint.plugins.render_html",
    "segmint.plugins.identify_default",
    "segmint.plugins.strategy_bestsellers",
    "segmint.plugins.strategy_new_arrivals",
    "segmint.plugins.strategy_recently_viewed",
    "segmint.plugins.strategy_viewed_based",
    "segmint.plugins.strategy_markdowns",
    "segmint.plugins.strategy_bundles",
    "segmint.plugins.strategy_user_based",
    "segmint.plugins.strategy_manual",
    "segmint.plugins.strategy_cart_reminder",
    "segmint.plugins.strategy_new_vs_returning",
    "segmint.plugins.strategy_discount_affinity",
)
