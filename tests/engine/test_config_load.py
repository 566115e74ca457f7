"""Decoding config files: every structural problem reported together, with path and line."""

import textwrap
from datetime import datetime, timezone

import pytest

from segmint.engine.config.lines import locate_line, split_path
from segmint.engine.config.load import parse_config
from segmint.engine.config.schema import Config, parse_duration
from segmint.engine.errors import ConfigError


def toml(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def problems(text: str, fmt: str = "toml") -> dict[str, ConfigError]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, fmt=fmt, file="shop.toml")
    assert info.value.problems, "a validation error lists its problems"
    return {p.path: p for p in info.value.problems}


MINIMAL = toml("""
    [[campaigns]]
    id = "home-best"
    slots = ["home"]
    strategy = "bestsellers"
""")


def test_defaults_for_every_section():
    config = parse_config(MINIMAL, file="shop.toml")
    assert config.store.path == "segmint.db"
    assert config.identity.cookie == "segmint_vid" and config.identity.max_age_days == 365
    assert config.api.prefix == "/_segmint"
    assert config.middleware.time_budget_ms == 50
    assert config.middleware.max_body_bytes == 1_048_576
    assert config.middleware.product_path == "/products/{sku}"
    assert "bot" in config.middleware.bot_user_agents
    assert config.cache.maxsize == 10_000 and config.cache.ttl_seconds == 60
    assert config.stats.refresh_seconds == 300 and config.stats.window_days == 30
    assert config.campaigns[0].priority == 0 and config.campaigns[0].min_items == 1
    assert config.source_path == "shop.toml"


def test_every_unknown_key_is_reported_at_once_with_suggestions_and_lines():
    text = toml("""
        [store]
        pth = "x.db"

        [[campaigns]]
        id = "a"
        slots = ["home"]
        strategy = "bestsellers"

        [[campaigns]]
        id = "b"
        slots = ["home"]
        strategy = "bestsellers"
        prority = 3

        [[campaigns.variants]]
        name = "A"
        wieght = 50
    """)
    found = problems(text)
    assert set(found) == {"$.store.pth", "$.campaigns[1].prority", "$.campaigns[1].variants[0].wieght"}
    assert found["$.store.pth"].suggestion == "path"
    assert found["$.store.pth"].line == 2
    assert found["$.campaigns[1].prority"].suggestion == "priority"
    assert found["$.campaigns[1].prority"].line == 13
    assert found["$.campaigns[1].variants[0].wieght"].line == 17
    assert all(p.file == "shop.toml" for p in found.values())


def test_type_errors_in_several_campaigns_are_all_reported():
    text = toml("""
        [[campaigns]]
        id = "a"
        slots = "home"
        strategy = "bestsellers"

        [[campaigns]]
        id = "b"
        slots = ["home"]
        strategy = "bestsellers"
        priority = "high"
        min_items = -1
    """)
    found = problems(text)
    assert set(found) == {"$.campaigns[0].slots", "$.campaigns[1].priority", "$.campaigns[1].min_items"}
    assert "Expected `array`, got `str`" in found["$.campaigns[0].slots"].message
    assert found["$.campaigns[0].slots"].line == 3
    assert found["$.campaigns[1].priority"].line == 10
    assert found["$.campaigns[1].min_items"].line == 11


def test_missing_required_key_names_the_campaign():
    found = problems('[[campaigns]]\nid = "a"\nslots = ["home"]\n')
    assert list(found) == ["$.campaigns[0]"]
    assert "strategy" in found["$.campaigns[0]"].message
    assert found["$.campaigns[0]"].line == 1


@pytest.mark.parametrize(
    ("extra", "path", "words"),
    [
        ('segment = "vip"\nfilter = {"spend.total" = {"$gte" = 1}}', "$.campaigns[0]", "not both"),
        ("[campaigns.schedule]\nstart = 2026-02-01T00:00:00Z\nend = 2026-01-01T00:00:00Z",
         "$.campaigns[0].schedule", "after `start`"),
        ('[campaigns.schedule]\nstart = "next monday"', "$.campaigns[0].schedule.start",
         "'next monday' is not a date or time; write it like 2026-11-01"),
        ('frequency_cap = { impressions = 3, period = "1 fortnight" }', "$.campaigns[0].frequency_cap",
         "duration"),
        ('frequency_cap = { impressions = 500, period = "1d" }', "$.campaigns[0].frequency_cap.impressions",
         "<= 20"),
        ('coupon = { code = "X", percent = 10, amount = 5 }', "$.campaigns[0].coupon", "not both"),
        ('coupon = { code = "X", percent = 150 }', "$.campaigns[0].coupon.percent", "<= 100"),
        ('variants = [{ name = "A", weight = 0 }, { name = "B", weight = 0 }]', "$.campaigns[0]", "sum to 0"),
        ('variants = [{ name = "A" }, { name = "A" }]', "$.campaigns[0]", "unique"),
        ('id = "has space"', "$.campaigns[0].id", "regex"),
    ],
)
def test_cross_field_and_constraint_errors(extra, path, words):
    text = toml("""
        [[campaigns]]
        slots = ["home"]
        strategy = "bestsellers"
    """)
    if not extra.startswith("id ="):
        text = text.replace("[[campaigns]]\n", '[[campaigns]]\nid = "c1"\n')
    head, _, table = extra.partition("[campaigns.schedule]")
    text = text.replace("[[campaigns]]\n", f"[[campaigns]]\n{head}\n") + (f"[campaigns.schedule]{table}\n" if table else "")
    found = problems(text)
    assert path in found, found
    assert words in found[path].message


def test_middleware_product_path_needs_sku():
    found = problems('[middleware]\nproduct_path = "/p/{id}"\n')
    assert "{sku}" in found["$.middleware"].message


def test_env_references_resolve_and_missing_ones_are_named(monkeypatch):
    monkeypatch.setenv("SEGMINT_TEST_SECRET", "s3cret-s3cret-s3cret")
    monkeypatch.setenv("SEGMINT_TEST_TOKEN", "token-123456")
    config = parse_config('[identity]\nsecret = "env:SEGMINT_TEST_SECRET"\n[api]\ntoken = "${SEGMINT_TEST_TOKEN}"\n')
    assert config.identity.secret == "s3cret-s3cret-s3cret"
    assert config.api.token == "token-123456"
    monkeypatch.delenv("SEGMINT_TEST_SECRET")
    found = problems('[identity]\nsecret = "env:SEGMINT_TEST_SECRET"\n')
    assert "SEGMINT_TEST_SECRET" in found["$.identity.secret"].message
    assert found["$.identity.secret"].line == 2


def test_short_secret_is_rejected():
    found = problems('[identity]\nsecret = "short"\n')
    assert "length" in found["$.identity.secret"].message


def test_source_path_is_not_a_file_key():
    found = problems('source_path = "/etc/passwd"\n')
    assert "unknown key" in found["$.source_path"].message


def test_segments_accept_tables_and_json_text():
    config = parse_config(toml('''
        [segments.vip]
        filter = { "spend.total" = { "$gte" = 1000 } }
        description = "big spenders"

        [segments.repeat_low_returns]
        filter = """{"$and": [{"customer_segment.outbounds_avg_time_delta": {"$lte": 14}}]}"""
    '''))
    assert config.segments["vip"].filter == {"spend.total": {"$gte": 1000}}
    assert isinstance(config.segments["repeat_low_returns"].filter, str)


def test_bad_segment_name_is_reported():
    found = problems('[segments."bad name"]\nfilter = {}\n')
    assert "invalid name" in found["$.segments.bad name"].message


def test_schedule_and_frequency_cap_values():
    config = parse_config(toml("""
        [[campaigns]]
        id = "c"
        slots = ["home"]
        strategy = "bestsellers"
        frequency_cap = { impressions = 3, period = "12h" }
        schedule = { start = 2026-01-01T00:00:00Z }
    """))
    campaign = config.campaigns[0]
    assert campaign.frequency_cap.seconds == 12 * 3600
    assert campaign.schedule.admits(datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert not campaign.schedule.admits(datetime(2025, 12, 31, tzinfo=timezone.utc))


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1d", 86400), ("2w", 1209600)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_toml_syntax_error_has_a_line():
    with pytest.raises(ConfigError) as info:
        parse_config('[store]\npath = "x.db"\nbroken = \n', file="shop.toml")
    assert info.value.line == 3
    assert "TOML" in info.value.message


def test_json_and_yaml_configs_decode_and_locate_errors():
    json_text = '{\n  "campaigns": [\n    {"id": "a", "slots": ["home"], "strategy": "x"},\n' \
                '    {"id": "b", "slots": "home", "strategy": "x"}\n  ]\n}\n'
    found = problems(json_text, fmt="json")
    assert found["$.campaigns[1].slots"].line == 4
    yaml_text = "campaigns:\n  - id: a\n    slots: [home]\n    strategy: x\n  - id: b\n    slots: [home]\n" \
                "    strategy: x\n    prority: 2\n"
    found = problems(yaml_text, fmt="yaml")
    assert found["$.campaigns[1].prority"].line == 8
    assert found["$.campaigns[1].prority"].suggestion == "priority"
    assert parse_config("store:\n  path: ':memory:'\n", fmt="yaml").store.path == ":memory:"


def test_json_syntax_error_has_a_line():
    with pytest.raises(ConfigError) as info:
        parse_config('{\n  "store": {\n    "path": \n  }\n}', fmt="json")
    assert info.value.line == 4


def test_top_level_must_be_a_table():
    with pytest.raises(ConfigError, match="table of keys"):
        parse_config("[1, 2]", fmt="json")


def test_split_path():
    assert split_path("$.campaigns[3].slots") == ["campaigns", 3, "slots"]
    assert split_path("$.segments.vip.filter.$and[0].spend.total") == [
        "segments", "vip", "filter", "$and", 0, "spend", "total"]


def test_locate_line_in_toml_subtables_and_pasted_json():
    text = toml("""
        [segments.lapsed]
        description = "x"
        filter = '''
        {"$and": [
          {"spend.total": {"$gte": 2000}},
          {"days_since_last_purchase": {"$gte": 45}}
        ]}'''

        [[campaigns]]
        id = "a"
        [campaigns.schedule]
        start = 2026-01-01T00:00:00Z
        [[campaigns]]
        id = "b"
        [[campaigns.variants]]
        name = "A"
        [[campaigns.variants]]
        name = "B"
    """)
    assert locate_line(text, "toml", "$.segments.lapsed.filter") == 3
    assert locate_line(text, "toml", "$.segments.lapsed.filter.$and[1].days_since_last_purchase") == 6
    assert locate_line(text, "toml", "$.campaigns[0].schedule.start") == 12
    assert locate_line(text, "toml", "$.campaigns[1].id") == 14
    assert locate_line(text, "toml", "$.campaigns[1].variants[1].name") == 18
    assert locate_line(text, "toml", "$.campaigns[1].variants[1]") == 17
    assert locate_line(text, "toml", "$.campaigns[5]") is None


def test_config_struct_is_frozen():
    config = parse_config(MINIMAL)
    with pytest.raises(AttributeError):
        config.store = None  # type: ignore[misc]
    assert isinstance(config, Config)
