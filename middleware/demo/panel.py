"""The "why this widget?" panel: the decision of this page view, as the middleware sees it.

It asks ``request.state.segmint`` (set by ``SegmintMiddleware`` before the app runs) for the
decision of the page's slots. Decisions are deterministic for a profile and a moment, so the
panel names the same campaign the middleware puts into the slot. Like the middleware, the
panel fails open: if segmint cannot decide, the page says so and still renders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.requests import Request

from .views import esc

__all__ = ["PanelRow", "panel_for", "why_panel"]

log = logging.getLogger("segmint.demo")


@dataclass(frozen=True)
class PanelRow:
    """One slot of the page as the engine decided it, for the "why this widget?" panel."""

    slot: str
    campaign: str | None
    variant: str | None = None
    segment: str | None = None
    strategy: str | None = None
    title: str | None = None
    control: bool = False
    reasons: Sequence[str] = field(default_factory=tuple)


async def panel_for(request: Request, slots: Sequence[str]) -> str:
    if not slots:
        return ""
    state = request.scope.get("state", {}).get("segmint")
    if state is None:
        return why_panel([], profile_key=None, note="segmint did not see this request.")
    identity = state.identity
    if not identity.personalize:
        return why_panel([], profile_key=None,
                         note=f"Not personalized ({identity.reason or 'no consent'}): everyone's default.")
    try:
        profile = await state.profile()
        decision = await state.decision(*slots)
    except Exception as exc:  # noqa: BLE001 - the demo page must render even so
        log.warning("segmint demo: no decision for the panel: %s", exc)
        return why_panel([], profile_key=None, note="segmint could not decide: the page is served as is.")
    rows = [
        PanelRow(slot=d.slot, campaign=d.campaign, variant=d.variant, segment=d.segment,
                 strategy=d.strategy, title=d.title, control=d.control, reasons=tuple(d.reasons))
        for d in decision.slots.values()
    ]
    return why_panel(rows, profile_key=profile.key, segments=decision.segments)


def why_panel(rows: Sequence[PanelRow], *, profile_key: str | None, segments: Sequence[str] = (),
              note: str = "") -> str:
    """The "why this widget?" panel: per slot, which segment and campaign chose the widget."""
    if not rows:
        body = f'<p class="why__none">{esc(note or "No personalized slot on this page.")}</p>'
    else:
        trs = "".join(_panel_row(r) for r in rows)
        body = ('<table><thead><tr><th>Slot</th><th>Segment</th><th>Campaign</th><th>Variant</th>'
                f'<th>Strategy</th><th>Title</th></tr></thead><tbody>{trs}</tbody></table>')
        if segments:
            names = ", ".join(f"<code>{esc(name)}</code>" for name in segments)
            body += f'<p>Segments this visitor is in (of those asked): {names}</p>'
        reasons = [f"{r.slot}: {reason}" for r in rows for reason in r.reasons]
        if reasons:
            items = "".join(f"<li>{esc(reason)}</li>" for reason in reasons)
            body += f'<details><summary>Why not the other campaigns?</summary><ul>{items}</ul></details>'
    who = f' for <code>{esc(profile_key)}</code>' if profile_key else ""
    return f'<aside class="why" aria-label="Why this widget"><h2>Why this widget{who}</h2>{body}</aside>'


def _panel_row(row: PanelRow) -> str:
    def cell(value: str | None, *, attr: str = "") -> str:
        return f"<td{attr}><code>{esc(value)}</code></td>" if value else '<td class="why__none">-</td>'

    campaign_attr = f' data-panel-campaign="{esc(row.campaign)}"' if row.campaign else ""
    segment_attr = f' data-panel-segment="{esc(row.segment)}"' if row.segment else ""
    variant = f"{row.variant} (control: no widget)" if row.control and row.variant else row.variant
    return (f'<tr data-panel-slot="{esc(row.slot)}"><td>{esc(row.slot)}</td>'
            f'{cell(row.segment or ("everyone" if row.campaign else None), attr=segment_attr)}'
            f'{cell(row.campaign or None, attr=campaign_attr)}{cell(variant)}{cell(row.strategy)}'
            f'<td>{esc(row.title or "")}</td></tr>')
