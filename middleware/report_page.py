"""The campaign report as one server-rendered HTML page: ``GET {prefix}/report`` (Bearer token).

The page holds the report's tables and, per campaign, an inline SVG chart of conversion over
time per variant (daily cohorts by first exposure). No CDN, no JavaScript: the page works
offline, behind a strict Content-Security-Policy, and in any browser. Every text that comes
from data (campaign, variant and segment names) is escaped.

Query parameters (all optional): ``since=YYYY-MM-DD``, ``campaign=ID``, ``window=DAYS``.
The token is only accepted in the ``Authorization`` header, never in the URL (URLs end up in
logs and browser history).
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import date, datetime, time, timezone
from html import escape
from typing import Any
from urllib.parse import parse_qsl

from segmint.engine.analytics import (
    CampaignReport,
    Report,
    SegmentSnapshot,
    build_report,
    configured_splits,
    segment_history,
)

__all__ = ["render_report_page", "render_chart", "report_endpoint", "parse_report_query"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

COLOURS = ("#1b6ac9", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#5c940d", "#0b7285", "#e67700")
CONTROL_COLOUR = "#495057"
_W, _H = 720, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 150, 28, 48
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212529;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}p.meta{color:#555;margin:0 0 12px}
table{border-collapse:collapse;margin:8px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dee2e6;padding:4px 8px;text-align:right}th{background:#f1f3f5}
td.name,th.name{text-align:left}td.statement{text-align:left;max-width:360px}
tr.control td{color:#495057;background:#f8f9fa}.sig{color:#2b8a3e;font-weight:600}
p.srm.mismatch{color:#fff;background:#c92a2a;padding:6px 10px;font-weight:600}
svg.chart{border:1px solid #dee2e6;background:#fff}svg text{font:12px system-ui,sans-serif;fill:#343a40}
"""


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _short(text: str, width: int = 16) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _lift_cell(variant: Any) -> str:
    lift = variant.lift
    if lift is None or lift.relative is None or lift.relative_ci is None:
        return "-"
    low, high = lift.relative_ci
    return (f"{lift.relative * 100:+.1f}% [{low * 100:+.1f}%, {high * 100:+.1f}%] "
            f"({lift.confidence * 100:.3g}%)")


def _campaign_table(campaign: CampaignReport) -> str:
    head = ("variant", "exposures", "visitors", "clicks", "CTR", "orders", "conversion", "revenue",
            "revenue / visitor", "avg order", "recommended revenue", "lift vs control (interval)", "verdict")
    rows = []
    for v in campaign.variants:
        cls = ' class="control"' if v.is_control else ""
        verdict = escape(v.statement)
        if v.lift is not None and v.lift.significant:
            verdict = f'<span class="sig">{verdict}</span>'
        cells = (f'<td class="name">{escape(v.variant)}</td>', f"<td>{v.exposures:,}</td>",
                 f"<td>{v.visitors:,}</td>", f"<td>{v.clicks:,}</td>", f"<td>{_pct(v.ctr)}</td>",
                 f"<td>{v.orders:,}</td>", f"<td>{_pct(v.conversion_rate)}</td>",
                 f"<td>{_money(v.revenue)}</td>", f"<td>{_money(v.revenue_per_visitor)}</td>",
                 f"<td>{_money(v.average_order_value)}</td>", f"<td>{_money(v.recommended_revenue)}</td>",
                 f"<td>{escape(_lift_cell(v))}</td>", f'<td class="statement">{verdict}</td>')
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    header = "".join(f'<th{" class=name" if h == "variant" else ""}>{escape(h)}</th>' for h in head)
    return f'<table class="variants"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _campaign_checks(campaign: CampaignReport) -> str:
    """The sample ratio check and the correction across variants, above the campaign's table."""
    html = ""
    if campaign.srm is not None:
        cls = "srm mismatch" if campaign.srm.mismatch else "srm meta"
        html += f'<p class="{cls}">{escape(campaign.srm.message)}</p>'
    tested = sum(1 for v in campaign.variants if v.lift is not None)
    if tested > 1:
        html += (f'<p class="meta correction">{tested} variants against control: p-values corrected '
                 f"({escape(campaign.correction)}); each interval is at the level the correction leaves it.</p>")
    return html


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


def render_report_page(report: Report, segments: Sequence[SegmentSnapshot] | None = None) -> str:
    """The whole page as a string (UTF-8 HTML5)."""
    period = f"{report.since.date().isoformat() if report.since else 'the beginning'} to {report.until.isoformat()}"
    body = [
        "<h1>segmint campaign report</h1>",
        f'<p class="meta">{escape(period)}; attribution window {report.window_days:g} days; '
        f"{report.orders:,} orders ({report.attributed_orders:,} attributed), revenue "
        f"{_money(report.revenue)}. Generated {escape(report.generated_at.isoformat())}.</p>",
        f'<p class="meta">Method: {escape(report.method)}. Revenue is per campaign and does not add up '
        "across campaigns. Recent days' conversion is still maturing.</p>",
    ]
    body += [f'<p class="meta">{escape(note)}</p>' for note in report.notes]
    if not report.campaigns:
        body.append("<p>No campaign exposures in this period.</p>")
    for campaign in report.campaigns:
        body.append(f'<section class="campaign"><h2>Campaign {escape(campaign.campaign)}</h2>')
        body.append(_campaign_checks(campaign))
        body.append(_campaign_table(campaign))
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
        raise ValueError("token: send it in the Authorization header, never in the URL")
    return options


def _bearer_ok(scope: MutableMapping[str, Any], expected: str | None) -> bool:
    for key, value in scope.get("headers") or ():
        if key.lower() == b"authorization":
            scheme, _, token = value.partition(b" ")
            return bool(expected) and scheme.lower() == b"bearer" and hmac.compare_digest(
                token.strip(), (expected or "").encode())
    return False


async def _send(send: Send, status: int, body: str, content_type: str = "text/html; charset=utf-8",
                extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    data = body.encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", _CSP.encode()), *extra]})
    await send({"type": "http.response.body", "body": data})


async def report_endpoint(scope: MutableMapping[str, Any], receive: Receive, send: Send, runtime: Any) -> None:
    """ASGI handler for ``GET {prefix}/report``.

    It checks the Bearer token itself (``[api] token``), so it is safe wherever it is mounted;
    the middleware's router checks it first too, with its rate limit on failed attempts.
    The report streams the event log, so it runs in a worker thread. The unfiltered report
    resumes from (and saves) the state an earlier report kept in the store, so it reads only
    newer events; a filtered one (``since``, ``campaign``, ``window``) reads the whole log and
    saves nothing, so query strings cannot fill the store with saved states.
    """
    if scope.get("method") != "GET":
        await _send(send, 405, "use GET", "text/plain; charset=utf-8", [(b"allow", b"GET")])
        return
    if not _bearer_ok(scope, getattr(runtime.config.api, "token", None)):
        await _send(send, 401, "missing or invalid bearer token", "text/plain; charset=utf-8",
                    [(b"www-authenticate", b'Bearer realm="segmint"')])
        return
    try:
        options = parse_report_query(scope.get("query_string", b""))
    except ValueError as exc:
        await _send(send, 400, str(exc), "text/plain; charset=utf-8")
        return

    def build() -> str:
        config = runtime.config
        report = build_report(runtime.store, now=runtime.clock(), checkpoint=not options,
                              analysis=config.analytics, splits=configured_splits(config.campaigns), **options)
        return render_report_page(report, segment_history(runtime.store))

    try:
        page = await asyncio.get_running_loop().run_in_executor(None, build)
    except ValueError as exc:
        await _send(send, 400, str(exc), "text/plain; charset=utf-8")
        return
    await _send(send, 200, page)
