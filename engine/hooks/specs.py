"""Hook specifications: every extension point of segmint.

Plugin authors write::

    from segmint.engine import hookimpl

    @hookimpl
    def segmint_register_strategies():
        return [MyStrategy()]

and register the module through the ``segmint`` entry point group, or list it in the config
(``plugins = ["my_shop.segmint_plugin"]``). Hooks are synchronous and must not block on I/O:
the per-request hooks may run on the event loop (``HOOK_RUNS`` in ``manager.py`` says where
each hook runs).

Built-in plugins (``segmint.plugins.DEFAULT_PLUGINS``) implement the same hooks with
``trylast=True``, so a user's plugin is asked first and wins a ``firstresult`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from ..catalog import Catalog
    from ..config import Config
    from ..decide import Decision, SlotDecision
    from ..events import Event
    from ..fields import FieldDef
    from ..identity import Identity
    from ..profile import Profile
    from ..stores.base import AppendResult
    from ..strategy import Strategy

__all__ = ["hookspec", "hookimpl", "PROJECT_NAME"]

PROJECT_NAME = "segmint"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -------------------------------------------------------------------------------------------
# Registration: what a plugin adds to segmint. Called when a config is loaded or reloaded.
# -------------------------------------------------------------------------------------------


@hookspec
def segmint_register_strategies() -> Sequence[Strategy]:
    """Return strategies (objects with ``name``, ``Params`` and ``recommend``) to register.

    All results are collected. When two plugins register the same name, the plugin asked
    first wins: user plugins before the built-ins (which are ``trylast``).

    :return: a sequence of strategy objects, or None.
    """


@hookspec
def segmint_filter_operators() -> Mapping[str, Callable[[Any, str], Callable[[Any], bool]]]:
    """Return extra filter operators, by name (``"$near_price"``), as compile-time factories.

    A factory is called once per use in a filter as ``factory(operand, path)`` and returns a
    predicate ``predicate(value) -> bool`` applied to the field's value (and, as for built-in
    operators, to each element when the value is an array). It raises ``ValueError`` for a bad
    operand; segmint turns that into a ``FilterError`` with the path.

    :return: a mapping of ``$name`` to factory, or None. A name that clashes with a built-in
        operator is a ``PluginError``.
    """


@hookspec
def segmint_field_catalog() -> Sequence[FieldDef]:
    """Return extra fields that rules may use (e.g. ``extra.churn_score``).

    Declared fields are type-checked in filters and listed by ``segmint explain`` and the docs.
    A plugin that adds fields usually also implements ``segmint_enrich_document``.

    :return: a sequence of ``FieldDef``, or None.
    """


@hookspec(firstresult=True)
def segmint_load_catalog(config: Config) -> Catalog | None:
    """Return the product catalog for this config.

    Stops at first non-None result. The built-in plugin reads the JSON or CSV file named by
    ``[catalog] path``; the bad products it leaves out are in ``Catalog.problems``.

    :param config: the loaded config.
    :return: a ``Catalog``, or None to let the next plugin answer.
    """


# -------------------------------------------------------------------------------------------
# Request path: called per page view. Must be fast and must not block on I/O.
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def segmint_identify_visitor(scope: MutableMapping[str, Any], config: Config) -> Identity | None:
    """Identify the visitor of an ASGI request.

    Stops at first non-None result. The built-in plugin uses ``scope["user"]`` when the app
    authenticated the request, else the signed visitor cookie. A plugin can read a JWT, a
    header from a trusted proxy, or apply consent rules.

    :param scope: the ASGI HTTP scope (read it; do not change it).
    :param config: the current config.
    :return: an ``Identity``, or None to let the next plugin answer.
    """


@hookspec
def segmint_enrich_document(profile: Profile, document: dict[str, Any], now: datetime) -> None:
    """Add or change fields of a profile's document before rules are evaluated.

    Called once per decision that reads the document (a segment, a campaign filter or a
    strategy such as ``discount_affinity``); a page whose campaigns need none skips it.

    Use it for values segmint does not compute (a predictive score, a loyalty tier from the
    shop's database cache). Write under ``document["extra"]`` and declare the fields with
    ``segmint_field_catalog``.

    :param profile: the stored profile (do not change it).
    :param document: the document rules will see; change it in place.
    :param now: the evaluation time.
    """


@hookspec(firstresult=True)
def segmint_render_widget(slot_decision: SlotDecision, config: Config) -> str | None:
    """Render one slot's decision as HTML.

    Stops at first non-None result. The built-in renderer escapes every text and adds the
    ``data-segmint-campaign``, ``data-segmint-variant`` and ``data-segmint-sku`` attributes.

    :param slot_decision: campaign, variant, products, title and coupon for the slot.
    :param config: the current config.
    :return: an HTML fragment, or None to let the next plugin answer.
    """


# -------------------------------------------------------------------------------------------
# Observation: analytics sinks. Results are ignored; failures are logged, never raised.
# -------------------------------------------------------------------------------------------


@hookspec
def segmint_decision_made(decision: Decision, profile: Profile) -> None:
    """Observe a decision after it was made (for analytics sinks, logging, debugging).

    :param decision: the decision for all slots of one page view.
    :param profile: the profile it was made for.
    """


@hookspec
def segmint_events_recorded(events: Sequence[Event], result: AppendResult) -> None:
    """Observe events after they were stored and folded into profiles.

    :param events: the events stored (rejected ones are not included).
    :param result: what the store did (stored, duplicates, changed profile keys, and the
        written profiles, which the profile cache shares: read them, never change them).
    """
