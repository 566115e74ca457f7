"""The config file's structure: msgspec Structs, constraints, cross-field checks.

One base struct carries the policy (frozen, keyword-only, unknown keys rejected) so a typo in
a key is an error, never a silently ignored setting. Constraints live next to the field
(``Annotated[..., Meta(...)]``) and checks that span fields in ``__post_init__``, which
msgspec reports with the path of the struct that failed.

Checks that need more than one struct (a campaign's segment exists, a strategy is known, a
filter compiles) are made in ``compile.py``, where every problem is collected.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from ..profile import MAX_CAMPAIGN_EXPOSURES

__all__ = [
    "ConfigBase",
    "StoreConfig",
    "IdentityConfig",
    "ApiConfig",
    "CatalogConfig",
    "Segment",
    "Coupon",
    "Schedule",
    "FrequencyCap",
    "Variant",
    "Campaign",
    "MiddlewareConfig",
    "CacheConfig",
    "RenderConfig",
    "StatsConfig",
    "AnalyticsConfig",
    "Config",
    "parse_duration",
    "DEFAULT_BOT_USER_AGENTS",
]

# Names that end up in HTML attributes, profile keys and URLs: keep them plain.
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*$"
Name = Annotated[str, msgspec.Meta(pattern=_NAME, max_length=100)]
SegmentName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=100)]
#: A filter: a TOML/YAML/JSON table, or the JSON text pasted from another tool.
FilterSpec = dict[str, Any] | str

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"``.

    >>> parse_duration("1d")
    86400.0
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like '30m', '12h' or '7d'")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class ConfigBase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Policy of every config struct: immutable, keyword-only, unknown keys rejected."""


class StoreConfig(ConfigBase):
    #: SQLite file (relative to the config file) or ``":memory:"``.
    path: Annotated[str, msgspec.Meta(min_length=1)] = "segmint.db"
    #: A store URL; wins over ``path``. ``"redis://127.0.0.1:6379/0"`` shares profiles
    #: between app servers (``pip install segmint[redis]``).
    url: Annotated[str, msgspec.Meta(min_length=1)] | None = None


class IdentityConfig(ConfigBase):
    cookie: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-]+$")] = "segmint_vid"
    #: Signs visitor ids (HMAC). ``"env:NAME"`` or ``"${NAME}"`` reads an environment variable.
    secret: Annotated[str, msgspec.Meta(min_length=16)] | None = None
    max_age_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 365


class ApiConfig(ConfigBase):
    prefix: Annotated[str, msgspec.Meta(pattern=r"^/[A-Za-z0-9_\-/.]*$")] = "/_segmint"
    #: Bearer token of the event intake (env references allowed); None disables the intake.
    token: Annotated[str, msgspec.Meta(min_length=8)] | None = None


class CatalogConfig(ConfigBase):
    #: JSON catalog file, relative to the config file; None when a plugin provides the catalog.
    path: str | None = None


class Segment(ConfigBase):
    filter: FilterSpec
    description: str | None = None


class Coupon(ConfigBase):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="The code the shopper enters.")]
    percent: Annotated[Annotated[float, msgspec.Meta(gt=0, le=100)] | None, msgspec.Meta(
        description="Percent off (give `percent` or `amount`).")] = None
    amount: Annotated[Annotated[float, msgspec.Meta(gt=0)] | None, msgspec.Meta(
        description="Money off.")] = None

    def __post_init__(self) -> None:
        if self.percent is not None and self.amount is not None:
            raise ValueError("a coupon has `percent` or `amount`, not both")


class Schedule(ConfigBase):
    """When a campaign runs; either end may be open. A date alone is midnight UTC, a time
    without an offset is UTC (``2026-11-27``, ``2026-11-27T08:00:00Z``, ``2026-11-27 09:00+01:00``)."""

    start: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    end: Annotated[datetime, msgspec.Meta(tz=True)] | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("schedule `end` must be after `start`")

    def admits(self, now: datetime) -> bool:
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)


class FrequencyCap(ConfigBase):
    """At most ``impressions`` per visitor within ``period`` (e.g. ``"1d"``)."""

    # A profile keeps the last MAX_CAMPAIGN_EXPOSURES impression times per campaign.
    impressions: Annotated[int, msgspec.Meta(ge=1, le=MAX_CAMPAIGN_EXPOSURES)]
    period: str

    def __post_init__(self) -> None:
        parse_duration(self.period)

    @property
    def seconds(self) -> float:
        return parse_duration(self.period)


#: The variant name under which holdout (control-group) exposures are recorded.
CONTROL_VARIANT = "control"


class Variant(ConfigBase):
    """One arm of an A/B split; unset fields inherit the campaign's."""

    name: Name
    weight: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    #: A holdout: the visitor sees nothing, and the exposure is recorded to measure lift.
    control: bool = False
    strategy: str | None = None
    params: dict[str, Any] | None = None
    title: str | None = None
    coupon: Coupon | None = None

    def __post_init__(self) -> None:
        # Holdout exposures are recorded (and reported) as variant "control", whatever the
        # holdout is called; a shown variant of that name would be mistaken for it.
        if self.name == CONTROL_VARIANT and not self.control:
            raise ValueError(f'the variant name "{CONTROL_VARIANT}" is reserved for the holdout: '
                             "add control = true, or rename the variant")


class Campaign(ConfigBase):
    id: Name
    slots: Annotated[list[Name], msgspec.Meta(min_length=1)]
    strategy: Annotated[str, msgspec.Meta(min_length=1)]
    #: A named segment, or an inline ``filter``; neither means everyone.
    segment: str | None = None
    filter: FilterSpec | None = None
    #: Path patterns (``/products/*``); empty means every page.
    pages: list[Annotated[str, msgspec.Meta(min_length=1)]] = []
    params: dict[str, Any] = {}
    title: str | None = None
    coupon: Coupon | None = None
    #: Higher priority is asked first; ties keep file order.
    priority: int = 0
    min_items: Annotated[int, msgspec.Meta(ge=0)] = 1
    schedule: Schedule | None = None
    frequency_cap: FrequencyCap | None = None
    #: Seed of the variant hash (default: the id). Change it to reshuffle visitors.
    seed: str | None = None
    variants: list[Variant] = []
    enabled: bool = True
    description: str | None = None

    def __post_init__(self) -> None:
        if self.segment is not None and self.filter is not None:
            raise ValueError("a campaign has `segment` or `filter`, not both")
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        if self.variants and sum(v.weight for v in self.variants) <= 0:
            raise ValueError("variant weights sum to 0: no visitor could be assigned")


DEFAULT_BOT_USER_AGENTS: tuple[str, ...] = (
    "bot", "crawler", "spider", "slurp", "headless", "lighthouse", "facebookexternalhit",
    "embedly", "preview", "pingdom", "monitor", "scrapy", "archiver",
)


class MiddlewareConfig(ConfigBase):
    #: Past this, the page goes out without widgets.
    time_budget_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50
    #: Larger HTML responses pass through untouched.
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1_048_576
    #: Adds an ``X-Segmint`` header describing the decision (never enable in production).
    debug_header: bool = False
    #: How product pages look; ``{sku}`` marks the sku (for product_view events).
    product_path: str = "/products/{sku}"
    require_consent: bool = False
    consent_cookie: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-]+$")] = "segmint_consent"
    #: Case-insensitive substrings of User-Agent headers that get no widgets and no tracking.
    bot_user_agents: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_BOT_USER_AGENTS))
    track_page_views: bool = True

    def __post_init__(self) -> None:
        if self.product_path.count("{sku}") != 1:
            raise ValueError("`product_path` must contain `{sku}` once, e.g. '/products/{sku}'")


class CacheConfig(ConfigBase):
    maxsize: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    ttl_seconds: Annotated[float, msgspec.Meta(ge=0)] = 60.0


class RenderConfig(ConfigBase):
    #: A template file overriding the built-in widget, relative to the config file.
    template: str | None = None
    #: ISO 4217 code of the catalog's prices, e.g. ``"EUR"``: widget prices read ``€1,299.00``.
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z]{3}", self.currency):
            raise ValueError(f"`currency` is an ISO 4217 code such as 'USD' or 'EUR', not {self.currency!r}")


class StatsConfig(ConfigBase):
    #: How often bestseller and co-purchase statistics are rebuilt from the event log.
    refresh_seconds: Annotated[float, msgspec.Meta(ge=1)] = 300.0
    window_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30


#: Multiple-comparison corrections across a campaign's variants.
Correction = Literal["holm-bonferroni", "benjamini-hochberg", "none"]
#: How a report reads each lift: p-values and confidence intervals, or chance to beat control.
Engine = Literal["frequentist", "bayesian"]
#: How a report reads the event log: in Python, through DuckDB's columnar projection, or either.
Reader = Literal["python", "duckdb", "auto"]


class AnalyticsConfig(ConfigBase):
    """How the campaign report reads its experiments (``segmint report``, the report page).

    alpha 0.05, the sequential tuning 5,000 and the SRM threshold 0.001 are GrowthBook's
    defaults. Sequential testing and Holm-Bonferroni are on by default here (GrowthBook leaves
    both off), so reading the report daily and comparing several variants stay honest.
    """

    #: The false positive rate of each verdict (two-sided).
    alpha: Annotated[float, msgspec.Meta(gt=0, le=0.2)] = 0.05
    #: Always-valid confidence sequences, so the report may be read daily; false: a fixed-horizon
    #: t-test, valid only when read once at a sample size planned in advance.
    sequential: bool = True
    #: Visitors (both arms) at which you expect to decide: the confidence sequence is tightest there.
    sequential_tuning: Annotated[float, msgspec.Meta(ge=1)] = 5000.0
    #: Across a campaign's variants: "holm-bonferroni", "benjamini-hochberg" or "none".
    correction: Correction = "holm-bonferroni"
    #: The smallest relative lift worth detecting (0.1 = 10%): "visitors needed" plans for it.
    mde: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.10
    #: The chance of detecting a lift of ``mde`` when it is there.
    power: Annotated[float, msgspec.Meta(ge=0.5, lt=1)] = 0.80
    #: The chi-square p-value below which a campaign's split is a sample ratio mismatch.
    srm_threshold: Annotated[float, msgspec.Meta(gt=0, le=0.05)] = 0.001
    #: "frequentist" (p-values, intervals) or "bayesian" (chance to beat control, expected loss).
    engine: Engine = "frequentist"
    #: CUPED: adjust each lift for the visitors' spend and orders before their first exposure.
    cuped: bool = True
    #: The Bayesian engine's prior on the relative lift: mean and standard deviation (GrowthBook's).
    prior_mean: Annotated[float, msgspec.Meta(ge=-1, le=10)] = 0.0
    prior_sd: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.3
    #: Use that prior (true), or a flat one (false, GrowthBook's default: the data alone).
    proper_prior: bool = False
    #: How a report reads the event log: "python" (the log itself), "duckdb" (a columnar projection
    #: beside a SQLite store file, read by DuckDB: the ``analytics`` extra), or "auto" (duckdb when
    #: the extra is installed and the store is a SQLite file). Both give the same report. With
    #: DuckDB, the first report builds the projection and the compactor keeps it current.
    reader: Reader = "python"


class Config(ConfigBase):
    """The whole config file.

    ``source_path`` is not a file key: ``load_config`` sets it to the file it read, so paths
    in the file (catalog, store, template) resolve relative to the file's directory.
    """

    plugins: list[str] = []
    store: StoreConfig = StoreConfig()
    identity: IdentityConfig = IdentityConfig()
    api: ApiConfig = ApiConfig()
    catalog: CatalogConfig = CatalogConfig()
    segments: dict[SegmentName, Segment] = {}
    campaigns: list[Campaign] = []
    middleware: MiddlewareConfig = MiddlewareConfig()
    cache: CacheConfig = CacheConfig()
    render: RenderConfig = RenderConfig()
    stats: StatsConfig = StatsConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    source_path: str | None = None

    @property
    def source_dir(self) -> Path:
        """The directory relative paths resolve against (the cwd for a config not from a file)."""
        return Path(self.source_path).parent if self.source_path else Path.cwd()

    def resolve_path(self, path: str | Path) -> Path:
        """``path`` made absolute against ``source_dir`` (absolute paths are kept)."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.source_dir / candidate

    @property
    def store_location(self) -> str:
        """The store to open: ``":memory:"`` and URLs as written, a file resolved against the config."""
        if self.store.url:
            return self.store.url
        if self.store.path == ":memory:" or "://" in self.store.path:
            return self.store.path
        return str(self.resolve_path(self.store.path))


#: Keys set by the loader, never read from a file.
LOADER_FIELDS = frozenset({"source_path"})
