"""The campaign report as one server-rendered HTML page: ``GET {prefix}/report``.

The page opens with the engine and CUPED line, then the campaigns and a verdict badge each;
per campaign it shows the health checks (sample ratio, people in several arms), the table
(conversion, the lift with its interval, and the p-value, or with the Bayesian engine the
chance to beat control and the expected loss), an inline SVG chart of the cumulative lift with
its confidence band over time, revenue (per visitor and average order value, each with its lift
and interval, and the revenue guardrail in red), and conversion per day (daily cohorts by first
exposure). No CDN, no JavaScript: the page works offline, behind a strict
Content-Security-Policy, and in any browser. Every text that comes from data (campaign, variant
and segment names) is escaped.

Query parameters (all optional): ``since=YYYY-MM-DD``, ``campaign=ID``, ``window=DAYS``.
A person signs in through a form (``report_session``: the token once, then a session
cookie); scripts send the token in the ``Authorization`` header. Never in the URL (URLs end
up in logs and browser history).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import math
import threading
from collections.abc import Callable, Hashable, Sequence
from datetime import date, datetime, time, timezone
from html import escape
from typing import Any
from urllib.parse import parse_qsl

from segmint.engine.analytics import (
    CampaignReport,
    Lift,
    LiftPoint,
    Report,
    SegmentSnapshot,
    build_report,
    configured_splits,
    segment_history,
)
from segmint.engine.runtime import Runtime

from .asgi_types import Receive, Scope, Send
from .report_session import report_prefix, sign_in_page, signed_in

__all__ = ["render_report_page", "render_chart", "render_lift_chart", "verdict_badge", "report_endpoint",
           "parse_report_query", "send_page"]


COLOURS = ("#1b6ac9", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#5c940d", "#0b7285", "#e67700")
CONTROL_COLOUR = "#495057"
_W, _H = 720, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 150, 28, 48
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212529;background:#fff}
h1{font-size:22px;margin:0 0 4px}h3{font-size:15px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px}p.meta{color:#555;margin:0 0 12px}
table{border-collapse:collapse;margin:8px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dee2e6;padding:4px 8px;text-align:right}th{background:#f1f3f5}
td.name,th.name{text-align:left}td.statement{text-align:left;max-width:360px}
tr.control td{color:#495057;background:#f8f9fa}.sig{color:#2b8a3e;font-weight:600}
p.srm.mismatch,p.guardrail{color:#fff;background:#c92a2a;padding:6px 10px;font-weight:600}
p.multiarm.warning{background:#fff3bf;color:#5c3c00;padding:6px 10px}
.guardrail-text,.drop{color:#c92a2a;font-weight:600}tr.guardrail td{background:#fff5f5}
svg.chart{border:1px solid #dee2e6;background:#fff}svg text{font:12px system-ui,sans-serif;fill:#343a40}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.badge.win{background:#2b8a3e}.badge.loss{background:#e8590c}.badge.srm,.badge.guardrail{background:#c92a2a}
.badge.collecting{background:#868e96}.badge.flat{background:#495057}.badge.none{background:#adb5bd}
header.top{display:flex;justify-content:space-between;align-items:baseline}
form.signout button{font:inherit;padding:2px 10px}table.campaigns td a{color:#1b6ac9}
svg.lift .band{opacity:.18}
"""


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _short(text: str, width: int = 16) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _interval(lift: Lift | None) -> str:
    """A relative lift with its interval and the interval's level: ``+4.1% [-2.0%, +10.2%] (95%)``."""
    if lift is None or lift.relative is None or lift.relative_ci is None:
        return "-"
    low, high = lift.relative_ci
    return (f"{lift.relative * 100:+.1f}% [{low * 100:+.1f}%, {high * 100:+.1f}%] "
            f"({lift.confidence * 100:.3g}%)")


def _lift_cell(variant: Any) -> str:
    return _interval(variant.lift)


def _p_value(value: float | None) -> str:
    return "-" if value is None else "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _bayesian(campaign: CampaignReport) -> bool:
    """The Bayesian engine read this campaign's lifts: its own numbers replace the p-values."""
    return any(v.lift is not None and v.lift.method == "bayesian" for v in campaign.variants)


def _campaign_table(campaign: CampaignReport) -> str:
    bayesian = _bayesian(campaign)
    # The Bayesian engine's verdict is the chance to beat control, so its p-values (kept in the
    # JSON for reference) would only invite a second, contradicting reading.
    odds = ("chance to beat control", "expected loss") if bayesian else ("p-value",)
    head = ("variant", "exposures", "visitors", "clicks", "CTR", "orders", "conversion",
            "lift vs control (interval)", *odds, "verdict")
    rows = []
    for v in campaign.variants:
        cls = ' class="control"' if v.is_control else ' class="guardrail"' if v.revenue_guardrail else ""
        verdict = escape(v.statement)
        if v.revenue_guardrail or (v.lift is not None and v.lift.significant):
            verdict = f'<span class="{"guardrail-text" if v.revenue_guardrail else "sig"}">{verdict}</span>'
        lift = v.lift
        if bayesian:
            numbers = (_pct(lift.chance_to_win, 1) if lift else "-", _pct(lift.expected_loss) if lift else "-")
        else:
            numbers = (_p_value(lift.p_value_adjusted if lift and lift.p_value_adjusted is not None
                                else lift.p_value if lift else None),)
        cells = (f'<td class="name">{escape(v.variant)}</td>', f"<td>{v.exposures:,}</td>",
                 f"<td>{v.visitors:,}</td>", f"<td>{v.clicks:,}</td>", f"<td>{_pct(v.ctr)}</td>",
                 f"<td>{v.orders:,}</td>", f"<td>{_pct(v.conversion_rate)}</td>",
                 f"<td>{escape(_lift_cell(v))}</td>", *(f"<td>{escape(n)}</td>" for n in numbers),
                 f'<td class="statement">{verdict}</td>')
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    header = "".join(f'<th{" class=name" if h == "variant" else ""}>{escape(h)}</th>' for h in head)
    return f'<table class="variants"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _campaign_checks(campaign: CampaignReport) -> str:
    """The health checks (sample ratio, people in several arms) and the correction across
    variants, above the campaign's table."""
    html = ""
    if campaign.srm is not None:
        cls = "srm mismatch" if campaign.srm.mismatch else "srm meta"
        html += f'<p class="{cls}">{escape(campaign.srm.message)}</p>'
    if len(campaign.variants) > 1:
        people = campaign.multi_arm_visitors
        visitors = sum(v.visitors for v in campaign.variants)
        if people:
            share = f" ({_pct(people / visitors, 1)} of the visitors)" if visitors else ""
            html += (f'<p class="multiarm warning">{people:,} {"person" if people == 1 else "people"}{share} '
                     "saw more than one variant (one human on several devices, merged by a login); counted in "
                     "each arm they saw, which pulls the lift toward 0.</p>")
        else:
            html += '<p class="multiarm meta">No one saw more than one variant.</p>'
    tested = sum(1 for v in campaign.variants if v.lift is not None)
    if tested > 1:
        html += (f'<p class="meta correction">{tested} variants against control: p-values corrected '
                 f"({escape(campaign.correction)}); each interval is at the level the correction leaves it.</p>")
    return html


def verdict_badge(campaign: CampaignReport) -> tuple[str, str]:
    """The campaign's verdict in a word or two, and its CSS class: a sample ratio mismatch
    first (nothing else may be trusted), then the revenue guardrail (a variant that lowers
    revenue per visitor significantly, even if it wins on conversion: not a win), then a
    significant loss, a significant win (with the Bayesian engine: trails or beats control), a
    test still collecting data, no difference, or no control to compare with."""
    if not campaign.trusted:
        return "do not trust: sample ratio mismatch", "srm"
    lifts = [v.lift for v in campaign.variants if v.lift is not None and v.lift.relative is not None]
    if campaign.control is None:
        return "no control", "none"
    tripped = [v for v in campaign.variants if v.revenue_guardrail]
    if tripped:
        if any(v.lift is not None and v.lift.significant and (v.lift.relative or 0) > 0 for v in tripped):
            return "conversion up, revenue per visitor down (guardrail)", "guardrail"
        return "revenue per visitor down (guardrail)", "guardrail"
    bayesian = _bayesian(campaign)
    if any(lift.significant and lift.relative < 0 for lift in lifts):  # type: ignore[operator]
        return ("trails control" if bayesian else "significant drop"), "loss"
    if any(lift.significant for lift in lifts):
        return ("beats control" if bayesian else "significant lift"), "win"
    if not lifts or any(lift.more_visitors for lift in lifts):
        return "collecting data", "collecting"
    return "no significant difference", "flat"


def _badge(campaign: CampaignReport) -> str:
    text, cls = verdict_badge(campaign)
    return f'<span class="badge {cls}">{escape(text)}</span>'


def _anchor(campaign: CampaignReport) -> str:
    return "campaign-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in campaign.campaign)


def _campaign_list(campaigns: Sequence[CampaignReport]) -> str:
    rows = []
    for c in campaigns:
        best = max((v for v in c.variants if v.lift is not None and v.lift.relative is not None),
                   key=lambda v: v.lift.relative, default=None)  # type: ignore[union-attr]
        lift = escape(_lift_cell(best)) if best is not None else "-"
        rows.append(f'<tr><td class="name"><a href="#{_anchor(c)}">{escape(c.campaign)}</a></td>'
                    f"<td>{_badge(c)}</td><td>{sum(v.visitors for v in c.variants):,}</td>"
                    f'<td class="name">{escape(best.variant) if best is not None else "-"}</td><td>{lift}</td>'
                    f"<td>{_money(sum(v.revenue for v in c.variants))}</td></tr>")
    return ('<table class="campaigns"><thead><tr><th class="name">campaign</th><th>verdict</th>'
            '<th>visitors</th><th class="name">best variant</th><th>its lift vs control (interval)</th>'
            f'<th>revenue</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _money_lift(lift: Lift | None) -> str:
    """A revenue lift's cell: the interval, and whether it is significant (Bayesian: the chance)."""
    text = _interval(lift)
    if lift is None or text == "-":
        return escape(text)
    if lift.chance_to_win is not None:
        text += f", {_pct(lift.chance_to_win, 1)} chance to beat control"
    cls = "sig" if lift.significant and (lift.relative or 0) > 0 else "drop" if lift.significant else ""
    return f'<span class="{cls}">{escape(text)}</span>' if cls else escape(text)


def _revenue_table(campaign: CampaignReport) -> str:
    """Revenue per variant: order totals, revenue per visitor and average order value with their
    lifts against the control, the recommended skus' share; a red line per variant that trips
    the revenue guardrail."""
    rows = "".join(
        f'<tr{" class=control" if v.is_control else " class=guardrail" if v.revenue_guardrail else ""}>'
        f'<td class="name">{escape(v.variant)}</td>'
        f"<td>{_money(v.revenue)}</td><td>{_money(v.revenue_per_visitor)}</td><td>{_money_lift(v.revenue_lift)}</td>"
        f"<td>{_money(v.average_order_value)}</td><td>{_money_lift(v.aov_lift)}</td>"
        f"<td>{_money(v.recommended_revenue)}</td><td>{_money(v.click_revenue)}</td></tr>"
        for v in campaign.variants)
    guardrails = "".join(
        f'<p class="guardrail">Guardrail: {escape(v.variant)} lowers revenue per visitor by '
        f"{_pct(-(v.revenue_lift.relative or 0.0), 1)}, significantly{_conversion_up(v)}: not a win.</p>"
        for v in campaign.variants if v.revenue_guardrail and v.revenue_lift is not None)
    return (f'{guardrails}<p class="meta">Attributed orders per variant; revenue per visitor over every '
            "visitor, buyers or not; recommended skus: the order lines whose sku the widget showed.</p>"
            '<table class="revenue"><thead><tr><th class="name">variant</th><th>revenue</th><th>per visitor</th>'
            "<th>per visitor lift (interval)</th><th>avg order</th><th>avg order lift (interval)</th>"
            f"<th>recommended skus</th><th>click-through revenue</th></tr></thead><tbody>{rows}</tbody></table>")


def _conversion_up(variant: Any) -> str:
    lift = variant.lift
    return (", although its conversion rises" if lift is not None and lift.significant and (lift.relative or 0) > 0
            else "")


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value`` (a round top for the y axis)."""
    if value <= 0:
        return 0.01
    base = 10.0 ** math.floor(math.log10(value))
    return next(f * base for f in (1, 2, 2.5, 5, 10) if f * base >= value * (1 - 1e-12))


def render_chart(campaign: CampaignReport) -> str:
    """Conversion rate per day (cohort by first exposure) per variant, as inline SVG."""
    series = [(v, list(v.daily)) for v in campaign.variants if v.daily]
    days = sorted({p.day for _, points in series for p in points})
    label = escape(f"Conversion over time for campaign {campaign.campaign}")
    if not days:
        return f'<p class="nochart">{label}: no exposures yet.</p>'
    first, last = days[0], days[-1]
    span = max(1, (last - first).days)
    top = _nice_max(max(p.rate for _, points in series for p in points))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(day: date) -> float:
        return _LEFT + plot_w * ((day - first).days / span if len(days) > 1 else 0.5)

    def y(rate: float) -> float:
        return _TOP + plot_h * (1 - rate / top)

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
             f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{label}" '
             f'data-campaign="{escape(campaign.campaign)}"><title>{label}</title>']
    grid = ['<g class="axis y">']
    for i in range(5):
        rate = top * i / 4
        yy = y(rate)
        grid.append(f'<line x1="{_LEFT}" y1="{yy:.1f}" x2="{_LEFT + plot_w}" y2="{yy:.1f}" stroke="#e9ecef"/>'
                    f'<text x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{rate * 100:.3g}%</text>')
    grid.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#343a40"/>')
    grid.append(f'<text x="16" y="{_TOP + plot_h / 2:.1f}" text-anchor="middle" '
                f'transform="rotate(-90 16 {_TOP + plot_h / 2:.1f})">conversion rate</text></g>')
    parts += grid
    ticks = days if len(days) <= 8 else [days[round(i * (len(days) - 1) / 6)] for i in range(7)]
    axis = [f'<g class="axis x"><line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" '
            f'y2="{_TOP + plot_h}" stroke="#343a40"/>']
    for day in dict.fromkeys(ticks):
        xx = x(day)
        axis.append(f'<line x1="{xx:.1f}" y1="{_TOP + plot_h}" x2="{xx:.1f}" y2="{_TOP + plot_h + 5}" stroke="#343a40"/>'
                    f'<text x="{xx:.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">{day.strftime("%b %d")}</text>')
    axis.append(f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_H - 6}" text-anchor="middle">'
                f'day of first exposure (UTC)</text></g>')
    parts += axis
    legend = [f'<g class="legend" transform="translate({_LEFT + plot_w + 16} {_TOP})">']
    colour_index = 0
    for row, (variant, points) in enumerate(series):
        if variant.is_control:
            colour, dash = CONTROL_COLOUR, ' stroke-dasharray="6 4"'
        else:
            colour, dash = COLOURS[colour_index % len(COLOURS)], ""
            colour_index += 1
        name = escape(variant.variant)
        coords = " ".join(f"{x(p.day):.1f},{y(p.rate):.1f}" for p in points)
        parts.append(f'<g class="series" data-variant="{name}"><polyline points="{coords}" fill="none" '
                     f'stroke="{colour}" stroke-width="2"{dash}/>'
                     + "".join(f'<circle cx="{x(p.day):.1f}" cy="{y(p.rate):.1f}" r="3" fill="{colour}">'
                               f'<title>{name} {p.day.isoformat()}: {p.converted} of {p.visitors}</title></circle>'
                               for p in points) + "</g>")
        legend.append(f'<g class="legend-item" transform="translate(0 {row * 20})">'
                      f'<rect width="14" height="4" y="5" fill="{colour}"/>'
                      f'<text x="20" y="12">{escape(_short(variant.variant))}</text></g>')
    legend.append("</g>")
    parts += legend
    parts.append("</svg>")
    return "".join(parts)


def _lift_range(series: Sequence[tuple[Any, Sequence[LiftPoint]]]) -> tuple[float, float]:
    """The y range: the estimates and bands of the later half of the days, and 0 (the first
    days, on a handful of visitors, swing wide enough to flatten the rest; they are clipped)."""
    values = [0.0]
    for _, points in series:
        later = points[len(points) // 2:]
        values += [p.relative for p in later if p.relative is not None]
        values += [b for p in later if p.relative_ci for b in p.relative_ci]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 0.05
    return low - pad, high + pad


def render_lift_chart(campaign: CampaignReport, index: int = 0) -> str:
    """Each variant's cumulative lift over the control, day by day, with its confidence band."""
    series = [(v, v.cumulative) for v in campaign.variants if v.cumulative]
    label = escape(f"Cumulative lift over control with its confidence band, campaign {campaign.campaign}")
    drawn = [(v, pts) for v, pts in series if any(p.relative_ci for p in pts)]
    if not drawn:
        why = "no control to compare with" if campaign.control is None else "no conversions in the control yet"
        return f'<p class="nochart">{label}: {why}.</p>'
    days = sorted({p.day for _, points in drawn for p in points})
    first, span = days[0], max(1, (days[-1] - days[0]).days)
    bottom, top = _lift_range(drawn)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(day: date) -> float:
        return _LEFT + plot_w * ((day - first).days / span if len(days) > 1 else 0.5)

    def y(value: float) -> float:
        return _TOP + plot_h * (top - value) / (top - bottom)

    clip = f"lift-clip-{index}"
    parts = [f'<svg class="chart lift" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
             f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{label}" data-campaign="{escape(campaign.campaign)}">'
             f'<title>{label}</title><defs><clipPath id="{clip}"><rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" '
             f'height="{plot_h}"/></clipPath></defs><g class="axis y">']
    step = _nice_max((top - bottom) / 5)  # round ticks: every 5%, 10%, 20%, 25%, 50% ...
    for i in range(math.ceil(bottom / step), math.floor(top / step) + 1):
        value = i * step
        parts.append(f'<line x1="{_LEFT}" y1="{y(value):.1f}" x2="{_LEFT + plot_w}" y2="{y(value):.1f}" '
                     f'stroke="#e9ecef"/><text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                     f"{value * 100:+.0f}%</text>".replace("+0%", "0%"))
    parts.append(f'<line class="zero" x1="{_LEFT}" y1="{y(0):.1f}" x2="{_LEFT + plot_w}" y2="{y(0):.1f}" '
                 f'stroke="#343a40" stroke-dasharray="4 3"/></g>')
    ticks = days if len(days) <= 8 else [days[round(i * (len(days) - 1) / 6)] for i in range(7)]
    parts.append(f'<g class="axis x"><line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" '
                 f'y2="{_TOP + plot_h}" stroke="#343a40"/>')
    for day in dict.fromkeys(ticks):
        parts.append(f'<text x="{x(day):.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">'
                     f'{day.strftime("%b %d")}</text>')
    parts.append(f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_H - 6}" text-anchor="middle">'
                 "visitors exposed up to the end of each day (UTC)</text></g>")
    legend = [f'<g class="legend" transform="translate({_LEFT + plot_w + 16} {_TOP})">']
    for row, (variant, points) in enumerate(drawn):
        colour = COLOURS[row % len(COLOURS)]
        name = escape(variant.variant)
        known = [p for p in points if p.relative_ci is not None and p.relative is not None]
        upper = " ".join(f"{x(p.day):.1f},{y(p.relative_ci[1]):.1f}" for p in known)  # type: ignore[index]
        lower = " ".join(f"{x(p.day):.1f},{y(p.relative_ci[0]):.1f}" for p in reversed(known))  # type: ignore[index]
        line = " ".join(f"{x(p.day):.1f},{y(p.relative):.1f}" for p in known)  # type: ignore[arg-type]
        last = known[-1]
        parts.append(f'<g class="series" data-variant="{name}" clip-path="url(#{clip})">'
                     f'<polygon class="band" points="{upper} {lower}" fill="{colour}"/>'
                     f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
                     + "".join(f'<circle cx="{x(p.day):.1f}" cy="{y(p.relative):.1f}" r="2.5" fill="{colour}">'  # type: ignore[arg-type]
                               f"<title>{name} {p.day.isoformat()}: {p.relative * 100:+.1f}% "  # type: ignore[operator]
                               f"[{p.relative_ci[0] * 100:+.1f}%, {p.relative_ci[1] * 100:+.1f}%], "  # type: ignore[index]
                               f"{p.visitors:,} vs {p.control_visitors:,} visitors"
                               f"{', significant' if p.significant else ''}</title></circle>" for p in known)
                     + "</g>")
        legend.append(f'<g class="legend-item" transform="translate(0 {row * 36})">'
                      f'<rect width="14" height="10" y="2" fill="{colour}" opacity=".35"/>'
                      f'<rect width="14" height="2" y="6" fill="{colour}"/>'
                      f'<text x="20" y="12">{escape(_short(variant.variant))}</text>'
                      f'<text x="20" y="28">{last.relative * 100:+.1f}%</text></g>')  # type: ignore[operator]
    legend.append("</g>")
    parts += legend
    parts.append("</svg>")
    return "".join(parts)


def _segments_section(history: Sequence[SegmentSnapshot]) -> str:
    if not history:
        return ('<h2>Segments</h2><p class="meta">No segment snapshots yet: run '
                '<code>segmint segments CONFIG --snapshot</code> daily.</p>')
    latest, oldest = history[-1], history[0]
    rows = "".join(
        f'<tr><td class="name">{escape(name)}</td><td>{size:,}</td>'
        f"<td>{_pct(size / latest.profiles if latest.profiles else 0.0, 1)}</td>"
        f"<td>{size - oldest.sizes.get(name, 0):+,}</td></tr>"
        for name, size in sorted(latest.sizes.items()))
    html = (f'<h2>Segments</h2><p class="meta">{latest.profiles:,} profiles on {latest.day.isoformat()}; '
            f"change since {oldest.day.isoformat()}.</p>"
            '<table class="segments"><thead><tr><th class="name">segment</th><th>members</th>'
            f"<th>share</th><th>change</th></tr></thead><tbody>{rows}</tbody></table>")
    if latest.overlap:
        pairs = "".join(f'<tr><td class="name">{escape(a)}</td><td class="name">{escape(b)}</td><td>{n:,}</td></tr>'
                        for (a, b), n in sorted(latest.overlap.items(), key=lambda item: -item[1]))
        html += ('<table class="overlap"><thead><tr><th class="name">segment</th><th class="name">and</th>'
                 f"<th>in both</th></tr></thead><tbody>{pairs}</tbody></table>")
    return html


def _engine_line(report: Report) -> str:
    """Which engine read the lifts and whether CUPED was applied (set, and how many lifts it
    adjusted: it needs pre-exposure orders in the period read)."""
    settings = report.analysis
    if settings.engine == "bayesian":
        engine = "Bayesian: chance to beat control and expected loss, credible intervals"
    elif settings.sequential:
        engine = "frequentist, sequential: intervals valid however often the page is read"
    else:
        engine = "frequentist, fixed horizon: valid when read once at the planned size"
    lifts = [lift for c in report.campaigns for v in c.variants
             for lift in (v.lift, v.revenue_lift) if lift is not None and lift.relative is not None]
    adjusted = sum(1 for lift in lifts if lift.cuped_theta is not None)
    if not settings.cuped:
        cuped = "off"
    elif adjusted:
        cuped = f"applied to {adjusted} of {len(lifts)} conversion and revenue-per-visitor lifts"
    else:
        cuped = "on, but not applied (no orders before exposure in the period read)"
    return f'<p class="meta engine">Engine: {escape(engine)}. CUPED: {escape(cuped)}.</p>'


def render_report_page(report: Report, segments: Sequence[SegmentSnapshot] | None = None, *,
                       sign_out: str | None = None) -> str:
    """The whole page as a string (UTF-8 HTML5). ``sign_out``: the sign-out form's action (the
    page was opened with a session cookie), None for none."""
    period = f"{report.since.date().isoformat() if report.since else 'the beginning'} to {report.until.isoformat()}"
    signout = (f'<form class="signout" method="post" action="{escape(sign_out)}"><button type="submit">'
               "Sign out</button></form>" if sign_out else "")
    body = [
        f'<header class="top"><h1>segmint campaign report</h1>{signout}</header>',
        f'<p class="meta">{escape(period)}; attribution window {report.window_days:g} days; '
        f"{report.orders:,} orders ({report.attributed_orders:,} attributed), revenue "
        f"{_money(report.revenue)}. Generated {escape(report.generated_at.isoformat())}.</p>",
        _engine_line(report),
        f'<p class="meta">Method: {escape(report.method)}. Revenue is per campaign and does not add up '
        "across campaigns. Recent days' conversion is still maturing.</p>",
    ]
    body += [f'<p class="meta">{escape(note)}</p>' for note in report.notes]
    if not report.campaigns:
        body.append("<p>No campaign exposures in this period.</p>")
    else:
        body.append(_campaign_list(report.campaigns))
    for index, campaign in enumerate(report.campaigns):
        body.append(f'<section class="campaign" id="{_anchor(campaign)}"><h2>Campaign '
                    f"{escape(campaign.campaign)} {_badge(campaign)}</h2>")
        body.append(_campaign_checks(campaign))
        body.append(_campaign_table(campaign))
        body.append('<h3>Lift over time</h3><p class="meta">The lift as the report read it at the end of '
                    "each day, with its confidence band (the interval of the table's method and level).</p>")
        body.append(render_lift_chart(campaign, index))
        body.append("<h3>Revenue</h3>")
        body.append(_revenue_table(campaign))
        body.append("<h3>Conversion by day of first exposure</h3>")
        body.append(render_chart(campaign))
        body.append("</section>")
    if segments is not None:
        body.append(_segments_section(segments))
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>segmint report</title><style>{_STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def parse_report_query(query_string: bytes) -> dict[str, Any]:
    """``since``, ``campaign`` and ``window`` from a query string; ``ValueError`` names the bad one."""
    query = dict(parse_qsl(query_string.decode("latin-1"), max_num_fields=20))
    options: dict[str, Any] = {}
    if query.get("since"):
        try:
            options["since"] = datetime.combine(date.fromisoformat(query["since"]), time(), timezone.utc)
        except ValueError:
            raise ValueError("since: give a date as YYYY-MM-DD") from None
    if query.get("campaign"):
        if len(query["campaign"]) > 128:
            raise ValueError("campaign: at most 128 characters")
        options["campaign"] = query["campaign"]
    if query.get("window"):
        try:
            window = float(query["window"])
        except ValueError:
            raise ValueError("window: give a number of days") from None
        if not 0 < window <= 365:
            raise ValueError("window: between 0 and 365 days")
        options["window_days"] = window
    if "token" in query:
        raise ValueError("token: sign in with the form or send it in the Authorization header, never in the URL")
    return options


def _bearer_ok(scope: Scope, expected: str | None) -> bool:
    for key, value in scope.get("headers") or ():
        if key.lower() == b"authorization":
            scheme, _, token = value.partition(b" ")
            return bool(expected) and scheme.lower() == b"bearer" and hmac.compare_digest(
                token.strip(), (expected or "").encode())
    return False


async def send_page(send: Send, status: int, body: str, content_type: str = "text/html; charset=utf-8",
                extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    data = body.encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", _CSP.encode()), *extra]})
    await send({"type": "http.response.body", "body": data})


class SharedBuilds:
    """Report builds in progress, by store, config and query: a request for a report that is being
    built waits for that build instead of starting another. A build reads the event log since
    the saved state (the first one, all of it) and holds everyone it met in memory, so a person
    pressing reload on a slow first report, or a team opening the page at once, must not
    multiply it. A waiter that goes away (the browser closed) leaves the build running for the
    others; the next request after a build ended starts a fresh one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, concurrent.futures.Future[Any]] = {}

    @property
    def running(self) -> int:
        """Builds in progress."""
        return len(self._running)

    async def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """``build()`` in a worker thread, or the result of the build of ``key`` in progress."""
        with self._lock:
            future = self._running.get(key)
            owner = future is None
            if owner:
                future = self._running[key] = concurrent.futures.Future()
                future.set_running_or_notify_cancel()  # so that no waiter's cancel reaches it
        if owner:
            try:
                asyncio.get_running_loop().run_in_executor(None, self._build, key, future, build)
            except BaseException as exc:  # no thread to run it (the loop's executor shut down)
                self._end(key, future, exc=exc)
        return await asyncio.wrap_future(future)

    def _build(self, key: Hashable, future: concurrent.futures.Future[Any], build: Callable[[], Any]) -> None:
        try:
            result = build()
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter
            self._end(key, future, exc=exc)
        else:
            self._end(key, future, result=result)

    def _end(self, key: Hashable, future: concurrent.futures.Future[Any], *, result: Any = None,
             exc: BaseException | None = None) -> None:
        """The build of ``key`` is over: later requests start anew; its waiters get its answer."""
        with self._lock:
            del self._running[key]
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)


#: The report page's builds (one per store and query at a time).
REPORT_BUILDS = SharedBuilds()


async def report_endpoint(scope: Scope, receive: Receive, send: Send, runtime: Runtime) -> None:
    """ASGI handler for ``GET {prefix}/report``.

    It checks the credentials itself (the ``[api] token`` as a Bearer header, or a session
    cookie signed under it), so it is safe wherever it is mounted; without either it answers
    401 with the sign-in form. The middleware's router checks a Bearer header first too, with
    its rate limit on failed attempts, and serves the form's sign-in and sign-out.
    The report streams the event log, so it runs in a worker thread, one build per query at a
    time (``SharedBuilds``: requests that come while it runs get its report). The unfiltered report
    resumes from (and saves) the state an earlier report kept in the store, so it reads only
    newer events; a filtered one (``since``, ``campaign``, ``window``) reads the whole log and
    saves nothing, so query strings cannot fill the store with saved states.
    """
    if scope.get("method") != "GET":
        await send_page(send, 405, "use GET", "text/plain; charset=utf-8", [(b"allow", b"GET")])
        return
    token = runtime.config.api.token
    prefix = report_prefix(scope.get("path", "/report"))
    session = signed_in(scope, token, runtime.clock().timestamp())
    if not session and not _bearer_ok(scope, token):
        message = "" if token else "The API is disabled: set [api] token in the config."
        await send_page(send, 401, sign_in_page(prefix, message), extra=[(b"www-authenticate", b'Bearer realm="segmint"')])
        return
    try:
        options = parse_report_query(scope.get("query_string", b""))
    except ValueError as exc:
        await send_page(send, 400, str(exc), "text/plain; charset=utf-8")
        return

    config = runtime.config  # one config for the build and its key, whatever a reload swaps meanwhile

    def build() -> Report:
        return build_report(runtime.store, now=runtime.clock(), checkpoint=not options,
                            analysis=config.analytics, splits=configured_splits(config.campaigns), **options)

    def render(report: Report) -> str:
        return render_report_page(report, segment_history(runtime.store),
                                  sign_out=f"{prefix.rstrip('/')}/report/logout" if session else None)

    try:
        # A hot reload (another engine, other splits) starts its own build; the one in
        # progress still answers those that asked before. The build holds ``config``, so its
        # id is not reused while the key is in use.
        report = await REPORT_BUILDS.get((id(runtime.store), id(config), *sorted(options.items())), build)
    except ValueError as exc:
        await send_page(send, 400, str(exc), "text/plain; charset=utf-8")
        return
    page = await asyncio.get_running_loop().run_in_executor(None, render, report)
    await send_page(send, 200, page)
