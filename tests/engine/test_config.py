"""Config checks that need plugins and filters, all reported together; the JSON Schema."""

import json
import textwrap
from pathlib import Path

import pytest

from segmint.engine.config import config_json_schema, load_compiled, load_config
from segmint.engine.errors import ConfigError, PluginError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def write(tmp_path: Path, text: str, name: str = "segmint.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def problems_of(path: Path) -> dict[str, ConfigError]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return {p.path: p for p in info.value.problems}


def test_semantic_problems_are_all_reported_together_with_lines_and_suggestions(tmp_path):
    path = write(tmp_path, """
        [segments.lapsed_vip]
        filter = { "spend.total" = { "$gte" = 2000 } }

        [segments.returners]
        filter = '{"$and": [{"customer_segment.returns_article_ratio": {"$gte": 40}}]}'

        [[campaigns]]
        id = "winback"
        segment = "lapsed_vpi"
        slots = ["home"]
        strategy = "user_based"

        [[campaigns]]
        id = "deals"
        slots = ["home"]
        strategy = "markdown"

        [[campaigns]]
        id = "best"
        slots = ["home"]
        strategy = "bestsellers"
        params = { limt = 4 }

        [[campaigns]]
        id = "winback"
        slots = ["cart"]
        strategy = "bestsellers"
        filter = { "orders.cont" = { "$gte" = 1 } }
    """)
    found = problems_of(path)
    assert set(found) == {
        "$.segments.returners.filter.$and[0].customer_segment.returns_article_ratio",
        "$.campaigns[0].segment",
        "$.campaigns[1].strategy",
        "$.campaigns[2].params.limt",
        "$.campaigns[3].filter.orders.cont",
        "$.campaigns[3].id",
    }
    segment = found["$.campaigns[0].segment"]
    assert (segment.suggestion, segment.line, segment.file) == ("lapsed_vip", 9, str(path))
    strategy = found["$.campaigns[1].strategy"]
    assert (strategy.suggestion, strategy.line) == ("markdowns", 16)
    params = found["$.campaigns[2].params.limt"]
    assert (params.suggestion, params.line) == ("limit", 22)
    bad_field = found["$.segments.returners.filter.$and[0].customer_segment.returns_article_ratio"]
    assert bad_field.suggestion == "customer_segment.returns_articles_ratio"
    assert bad_field.line == 5
    assert found["$.campaigns[3].filter.orders.cont"].suggestion == "orders.count"
    assert "duplicate campaign id 'winback'" in found["$.campaigns[3].id"].message
    assert found["$.campaigns[3].id"].line == 25


def test_bad_filter_json_text_and_bad_operator(tmp_path):
    path = write(tmp_path, """
        [segments.broken]
        filter = '{"spend.total": {"$gte": 10}'

        [segments.odd]
        filter = { "spend.total" = { "$gtee" = 10 } }
    """)
    found = problems_of(path)
    assert "not valid JSON" in found["$.segments.broken.filter"].message
    odd = [p for key, p in found.items() if key.startswith("$.segments.odd.filter")]
    assert len(odd) == 1 and odd[0].suggestion == "$gte"


def test_a_broken_segment_does_not_hide_segments_referring_to_it(tmp_path):
    path = write(tmp_path, """
        [segments.base]
        filter = { "spend.totl" = { "$gte" = 10 } }

        [segments.derived]
        filter = { "$and" = [{ "$segment" = "base" }, { "orders.count" = { "$gte" = "many" } }] }

        [segments.fine]
        filter = { "$segment" = "base" }
    """)
    found = problems_of(path)
    assert set(found) == {"$.segments.base.filter.spend.totl", "$.segments.derived.filter.$and[1].orders.count.$gte"}


def test_segment_cycle_is_reported(tmp_path):
    path = write(tmp_path, """
        [segments.a]
        filter = { "$segment" = "b" }
        [segments.b]
        filter = { "$segment" = "a" }
    """)
    with pytest.raises(ConfigError, match="cycle"):
        load_config(path)


def test_params_of_variants_are_checked_against_their_own_strategy(tmp_path):
    path = write(tmp_path, """
        [[campaigns]]
        id = "ab"
        slots = ["home"]
        strategy = "bestsellers"
        params = { window_days = 7 }
        variants = [
          { name = "A", weight = 1 },
          { name = "B", weight = 1, strategy = "new_arrivals" },
          { name = "C", weight = 1, strategy = "manual", params = { skus = [] } },
          { name = "D", weight = 1, strategy = "manul", params = { skus = ["x"] } },
          { name = "holdout", weight = 1, control = true, strategy = "nonexistent" },
        ]
    """)
    found = problems_of(path)
    # B inherits the campaign's params, which new_arrivals does not accept.
    assert "$.campaigns[0].params.window_days" in found
    assert any(key.startswith("$.campaigns[0].variants[2].params") for key in found)
    assert found["$.campaigns[0].variants[3].strategy"].suggestion == "manual"
    assert not any("variants[4]" in key for key in found)


def test_fallback_cycle_and_unknown_fallback(tmp_path):
    path = write(tmp_path, """
        [[campaigns]]
        id = "a"
        slots = ["home"]
        strategy = "bestsellers"
        params = { fallback = "bestseller" }
    """)
    found = problems_of(path)
    assert found["$.campaigns[0].params.fallback"].suggestion == "bestsellers"


def test_disabled_campaigns_are_validated_but_not_compiled(tmp_path):
    path = write(tmp_path, """
        [[campaigns]]
        id = "off"
        enabled = false
        slots = ["home"]
        strategy = "bestsellers"

        [[campaigns]]
        id = "on"
        slots = ["home"]
        strategy = "bestsellers"
    """)
    state = load_compiled(path)
    assert [c.id for c in state.campaigns] == ["on"]
    path.write_text(path.read_text().replace('id = "off"', 'id = "off"\nparams = { nope = 1 }'))
    assert "$.campaigns[0].params.nope" in problems_of(path)


def test_campaigns_compile_in_priority_order_then_file_order(tmp_path):
    path = write(tmp_path, """
        [[campaigns]]
        id = "low"
        slots = ["home"]
        strategy = "bestsellers"
        [[campaigns]]
        id = "high"
        slots = ["home"]
        strategy = "bestsellers"
        priority = 5
        [[campaigns]]
        id = "low-second"
        slots = ["home"]
        strategy = "bestsellers"
        [[campaigns]]
        id = "negative"
        slots = ["home"]
        strategy = "bestsellers"
        priority = -1
    """)
    assert [c.id for c in load_compiled(path).campaigns] == ["high", "low", "low-second", "negative"]


def test_unknown_slots_are_fine_and_a_campaign_without_variants_has_default(tmp_path):
    path = write(tmp_path, """
        [[campaigns]]
        id = "c"
        slots = ["somewhere-new"]
        strategy = "bestsellers"
    """)
    (campaign,) = load_compiled(path).campaigns
    assert [v.name for v in campaign.variants] == ["default"]
    assert campaign.seed == "c"


def test_catalog_problems_name_the_catalog_file(tmp_path):
    (tmp_path / "catalog.json").write_text('[{"sku": "a", "name": "A", "url": "javascript:x", "price": 1, "category": "c"}]')
    path = write(tmp_path, '[catalog]\npath = "catalog.json"\n')
    assert load_config(path).catalog.path == "catalog.json"  # load_config does not read the catalog
    catalog = load_compiled(path).catalog  # a bad product is left out, not a broken config
    assert len(catalog) == 0 and [p.file for p in catalog.problems] == [str(tmp_path / "catalog.json")]
    (tmp_path / "catalog.json").write_text("[{")
    with pytest.raises(ConfigError) as info:  # a broken file still is
        load_compiled(path)
    assert info.value.file == str(tmp_path / "catalog.json")


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    other = tmp_path / "segmint.ini"
    other.write_text("")
    with pytest.raises(ConfigError, match="unknown config format"):
        load_config(other)


def test_plugin_listed_in_config_that_cannot_be_imported(tmp_path):
    path = write(tmp_path, 'plugins = ["no_such_module_for_segmint"]\n')
    with pytest.raises(PluginError) as info:
        load_config(path)
    assert info.value.plugin == "no_such_module_for_segmint"


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = write(tmp_path, '[store]\npath = "data/x.db"\n[catalog]\npath = "cat.json"\n')
    config = load_config(path, validate=False)
    assert config.source_dir == tmp_path.resolve()
    assert config.store_location == str(tmp_path.resolve() / "data" / "x.db")
    assert config.resolve_path("/abs/cat.json") == Path("/abs/cat.json")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("**/*.toml")), ids=lambda p: p.name)
def test_every_example_config_is_valid(path):
    state = load_compiled(path)
    assert state.campaigns
    assert len(state.catalog) >= 50


def _meaning(node):
    """A schema with description whitespace folded: a library's formatting is not a change."""
    if isinstance(node, dict):
        return {key: " ".join(value.split()) if key == "description" and isinstance(value, str)
                else _meaning(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_meaning(item) for item in node]
    return node


def test_json_schema_snapshot_matches_docs():
    published = json.loads((ROOT / "docs" / "config.schema.json").read_text())
    assert _meaning(published) == _meaning(config_json_schema()), (
        "docs/config.schema.json is stale: regenerate it with `make schema`")


def test_json_schema_snapshot_compares_meaning_not_whitespace():
    schema = config_json_schema()
    reflowed = json.loads(json.dumps(schema).replace("The whole config file.", "The whole\\n    config   file."))
    assert reflowed != schema
    assert _meaning(reflowed) == _meaning(schema)
    reworded = json.loads(json.dumps(schema).replace("The whole config file.", "The entire config file."))
    assert _meaning(reworded) != _meaning(schema)


def test_json_schema_descriptions_are_dedented_whatever_msgspec_does():
    descriptions = []

    def collect(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "description" and isinstance(value, str):
                    descriptions.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(config_json_schema())
    assert descriptions
    assert not [d for d in descriptions if "\n    " in d]


def test_json_schema_describes_the_file_not_the_loader():
    schema = config_json_schema()
    config = schema["$defs"]["Config"]
    assert "source_path" not in config["properties"]
    assert config["additionalProperties"] is False
    assert {"store", "identity", "api", "catalog", "segments", "campaigns", "middleware"} <= set(config["properties"])


def test_a_key_given_twice_in_pasted_json_is_reported_with_its_path(tmp_path):
    from segmint.engine.config import load_config
    from segmint.engine.errors import ConfigError

    path = tmp_path / "segmint.toml"
    path.write_text('[store]\npath = ":memory:"\n[segments.a]\n'
                    'filter = \'{"orders.count": {"$gte": 1}, "orders.count": {"$gte": 5}}\'\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems or [info.value]
    assert [p.path for p in problems] == ["$.segments.a.filter.orders.count"]
    assert "appears twice" in problems[0].message and problems[0].line == 4


def test_a_shown_variant_may_not_be_called_control(tmp_path):
    from segmint.engine.config import load_config
    from segmint.engine.errors import ConfigError

    path = tmp_path / "segmint.toml"
    path.write_text('[store]\npath = ":memory:"\n[[campaigns]]\nid = "a"\nslots = ["home"]\nstrategy = "bestsellers"\n'
                    'variants = [{ name = "control", weight = 1 }, { name = "b", weight = 1 }]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems or [info.value]
    assert problems[0].path.startswith("$.campaigns[0].variants[0]")
    assert "reserved for the holdout" in problems[0].message


def test_the_config_package_exports_the_names_of_the_old_module():
    # engine/config.py became the package engine/config/: ``from segmint.engine.config import``
    # keeps working for every name it exported, and the package exports no more than those.
    import segmint.engine.config as package

    assert sorted(package.__all__) == sorted([
        "Config", "StoreConfig", "IdentityConfig", "ApiConfig", "CatalogConfig", "Segment", "Campaign",
        "Coupon", "Schedule", "FrequencyCap", "Variant", "MiddlewareConfig", "CacheConfig",
        "RenderConfig", "StatsConfig", "CompiledConfig", "load_config", "load_compiled", "parse_config",
        "compile_config", "config_json_schema", "config_warnings", "parse_duration",
    ])
    assert all(hasattr(package, name) for name in package.__all__)
