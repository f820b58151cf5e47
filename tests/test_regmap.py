"""The register map is a consistent contract: no overlaps, sane ranges, one codec."""

import json
import math
import struct
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from controller import registers
from firmware import regmap

PROFILES = regmap.PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_no_two_points_share_a_register(profile):
    used = {}
    for p in regmap.points(profile):
        for w in range(regmap.size(p)):
            key = (p[regmap.F_TABLE], p[regmap.F_ADDR] + w)
            assert key not in used, "%s overlaps %s at %s" % (p[0], used[key], key)
            used[key] = p[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_names_unique_and_carry_units(profile):
    pts = registers.points(profile)
    names = [p.name for p in pts]
    assert len(names) == len(set(names))
    suffix_units = {"_pct_s": "%/s", "_pct": "%", "_kw": "kW", "_c": "C", "_bar": "bar",
                    "_mg_nm3": "mg/Nm3", "_nm3h": "Nm3/h", "_s": "s", "_hz": "Hz", "_v": "V",
                    "_a": "A"}
    for p in pts:
        for suf, unit in suffix_units.items():
            if p.name.endswith(suf):
                assert p.unit == unit, p
                break


@pytest.mark.parametrize("profile", PROFILES)
def test_writable_points_have_range_and_default_inside(profile):
    for p in registers.points(profile):
        if p.access == "rw":
            assert p.table in (regmap.COIL, regmap.HOLDING), p
            assert p.min is not None and p.max is not None and p.min <= p.max, p
            assert p.min <= p.default <= p.max, p
            p.encode(p.min)
            p.encode(p.max)
        else:
            assert p.table in (regmap.INPUT, regmap.DISCRETE) or p.name.startswith("quality")


@pytest.mark.parametrize("profile", PROFILES)
def test_outputs_name_real_points(profile):
    pm = registers.point_map(profile)
    outs = regmap.outputs(profile)
    assert len(outs) <= 16
    for cmd, safe, fb in outs:
        assert pm[cmd].access == "rw" and pm[safe].access == "rw"
        assert pm[fb].access == "ro"
        if pm[cmd].table == regmap.HOLDING:
            assert (pm[cmd].scale, pm[cmd].min, pm[cmd].max) == (pm[safe].scale, pm[safe].min, pm[safe].max)
    assert pm["safe_hold_mask"].max == (1 << len(outs)) - 1


@pytest.mark.parametrize("profile", PROFILES)
def test_quality_slots_fit(profile):
    slots = registers.quality_slots(regmap.points(profile))
    assert 0 < len(slots) <= regmap.QUALITY_WORDS * 8


def test_bad_profile_is_named():
    with pytest.raises(ValueError, match="unknown profile 'boiler'"):
        regmap.points("boiler")


def _pt(t, scale=1):
    return ("x", regmap.HOLDING, 0, t, scale, "", "rw", None, None, None, 1)


@given(st.integers(-0x80000000, 0x7FFFFFFF))
def test_i32_roundtrip(v):
    p = _pt("i32")
    assert regmap.decode(p, regmap.encode(p, v)) == v


@given(st.integers(0, 0xFFFFFFFF))
def test_u32_high_word_first(v):
    assert regmap.encode(_pt("u32"), v) == [v >> 16, v & 0xFFFF]


@given(st.floats(width=32, allow_nan=False))
def test_f32_roundtrip(v):
    p = _pt("f32")
    assert regmap.decode(p, regmap.encode(p, v)) == v


def _key(t, v):
    w = regmap.encode(_pt(t), v)
    return regmap.sort_key(t, w[0], w[1] if len(w) > 1 else 0)


@given(st.sampled_from(["u16", "i16", "u32", "i32", "f32"]), st.data())
def test_sort_key_orders_like_the_value(t, data):
    bounds = {"u16": (0, 0xFFFF), "i16": (-0x8000, 0x7FFF), "u32": (0, 0xFFFFFFFF),
              "i32": (-0x80000000, 0x7FFFFFFF)}
    if t == "f32":
        gen = st.floats(width=32, allow_nan=False, allow_infinity=False).filter(lambda x: x != 0)
    else:
        gen = st.integers(*bounds[t])
    a, b = data.draw(gen), data.draw(gen)
    assert (_key(t, a) < _key(t, b)) == (a < b)


def test_f32_nan_is_outside_any_range():
    nan_words = [0x7FC0, 0x0000]
    k = regmap.sort_key("f32", *nan_words)
    assert k > _key("f32", 3.0e38)
    neg_nan = [0xFFC0, 0x0000]
    assert regmap.sort_key("f32", *neg_nan) < _key("f32", -3.0e38)


def test_encode_refuses_out_of_type_range():
    with pytest.raises(ValueError, match="out of u16 range"):
        regmap.encode(_pt("u16", 0.01), 700.0)


def test_host_point_refuses_out_of_range_write():
    p = registers.point_map("scr")["valve_cmd_pct"]
    with pytest.raises(ValueError, match=r"valve_cmd_pct: 101 outside 0..100 %"):
        p.encode(101)
