"""Rule profiles: the shipped ones load, mistakes are refused with file, rule and field."""

from __future__ import annotations

import pytest

from geo.rules import available_profiles, load_profile
from layers.errors import RuleError


def test_shipped_profiles_load():
    assert {"national", "pilot-2014", "guangdong-2023", "local-examples"} <= set(available_profiles())
    national = load_profile("national")
    rule = national.rule("net_cafe_school")
    assert (rule.limit_m, rule.method) == (200.0, "boundary")
    assert "kindergarten" not in rule.levels
    assert national.rule("net_cafe_residential").scope == "building_or_compound"
    assert national.recheck_band_m == 20.0


def test_regimes_differ_as_documented():
    pilot = load_profile("pilot-2014")
    assert pilot.rule("net_cafe_school").method == "gate-walk"
    assert pilot.rule("net_cafe_residential").scope == "building"
    gd = load_profile("guangdong-2023")
    assert gd.rule("net_cafe_school").method == "door-walk"
    kg = gd.rule("net_cafe_kindergarten")
    assert (kg.limit_m, kg.levels) == (100.0, ("kindergarten",))


def test_extends_merges_rules():
    local = load_profile("local-examples")
    ids = set(local.rule_ids)
    assert {"net_cafe_school", "tobacco_school", "lottery_school", "game_venue_spacing"} <= ids
    assert local.rule("tobacco_school").limit_m == 50.0
    assert local.rule("tobacco_school").regulates("pois:tobacco")
    assert local.rule("game_venue_spacing").type == "spacing"


def _write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ('regulated = ["karaoke"]\nlimit_m = 200', "regulated", "'karaoke'"),
        ('regulated = ["net_cafes"]\nlimit_m = -5', "limit_m", "-5"),
        (
            'regulated = ["net_cafes"]\nlimit_m = 200\nmethod = "as-the-crow-flies"',
            "method",
            "'as-the-crow-flies'",
        ),
        ('regulated = ["net_cafes"]\nlimit_m = 200\nlevels = ["university"]', "levels", "'university'"),
        ('regulated = ["net_cafes"]\nlimit_m = 0', "limit_m", "0"),
        ("regulated = []\nlimit_m = 200", "regulated", "[]"),
    ],
)
def test_mistakes_are_refused_naming_file_rule_and_field(tmp_path, body, field, value):
    path = _write(tmp_path, f'[[rule]]\nid = "r1"\ntype = "distance"\n{body}\n')
    with pytest.raises(RuleError) as err:
        load_profile(path)
    message = str(err.value)
    assert "bad.toml" in message
    assert "rule 'r1'" in message
    assert f"{field} = {value}" in message


def test_every_mistake_is_listed_at_once(tmp_path):
    path = _write(
        tmp_path,
        '[[rule]]\nid = "a"\ntype = "distance"\nregulated = ["x"]\nlimit_m = 200\n'
        '[[rule]]\nid = "b"\ntype = "teleport"\nregulated = ["net_cafes"]\n',
    )
    with pytest.raises(RuleError) as err:
        load_profile(path)
    assert "rule 'a': regulated = 'x'" in str(err.value)
    assert "rule 'b': type = 'teleport'" in str(err.value)


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(RuleError, match="national"):
        load_profile("atlantis")


def test_deployment_profile_overrides_shipped(tmp_path):
    _write(
        tmp_path,
        '[profile]\ntitle_zh = "本地"\n[[rule]]\nid = "net_cafe_school"\ntype = "distance"\n'
        'regulated = ["net_cafes"]\nlimit_m = 300\n',
        name="national.toml",
    )
    assert load_profile("national", extra_dir=tmp_path).rule("net_cafe_school").limit_m == 300.0
    assert load_profile("national").rule("net_cafe_school").limit_m == 200.0


def test_zone_rule_needs_zone_types(tmp_path):
    path = _write(tmp_path, '[[rule]]\nid = "z"\ntype = "zone"\nregulated = ["net_cafes"]\n')
    with pytest.raises(RuleError, match="zone_types"):
        load_profile(path)
