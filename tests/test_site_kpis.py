"""Site KPIs (controller/site: config [baseline_kwh_per_h] and [tariff],
store.site_kpis, `greenedge site report`): rows written as the primary host
writes them (Store.write, node metrics with device '') for two edges over
two hours into the real PostgreSQL of tests/test_site.py, the report read as
the read-only role, its figures checked against sums computed here from the
rows the test wrote."""

import pytest

from controller.config.toml import ConfigError
from tests.test_site import SITE

EXTRA = """
[baseline_kwh_per_h]
"Boiler house" = 40.0
"Compressor room" = 12.5
[tariff]
price_per_kwh = 0.2
currency = "EUR"
"""


def test_site_kpi_config_and_errors(tmp_path):
    from controller.site.config import load_site
    good = SITE % {"mq": 8883, "pg": 5432, "wpw": "w", "rpw": "r"} + EXTRA
    (tmp_path / "s.toml").write_text(good)
    cfg = load_site(tmp_path / "s.toml")
    assert cfg["baseline_kwh_per_h"] == {"Boiler house": 40.0, "Compressor room": 12.5}
    assert cfg["tariff"] == {"price_per_kwh": 0.2, "currency": "EUR"}
    (tmp_path / "s.toml").write_text(SITE % {"mq": 8883, "pg": 5432, "wpw": "w", "rpw": "r"})
    cfg = load_site(tmp_path / "s.toml")
    assert cfg["baseline_kwh_per_h"] == {} and cfg["tariff"] is None    # both optional
    line = good.splitlines().index('"Compressor room" = 12.5') + 1
    cases = [
        (good.replace('"Boiler house" = 40.0', '"Boiler hous" = 40.0'),
         r"baseline_kwh_per_h.Boiler hous: no such area in \[areas\] "
         r"\(areas: Boiler house, Compressor room\)"),
        (good.replace("12.5", "0"), r"s.toml:%d: baseline_kwh_per_h.Compressor room: expected "
                                    r"the area's baseline consumption in kWh/h" % line),
        (good.replace("12.5", '"12.5"'), r"Compressor room: .*got '12.5'"),
        (good.replace("12.5", "nan"), r"Compressor room: .*got nan"),
        (good.replace("price_per_kwh = 0.2\n", ""), r"tariff.price_per_kwh: missing"),
        (good.replace("price_per_kwh = 0.2", "price_per_kwh = -1"),
         r"tariff.price_per_kwh: -1 outside 0..1e\+06"),
        (good.replace('currency = "EUR"\n', ""), r"tariff.currency: missing"),
        (good.replace('currency = "EUR"', 'currency = " "'), r"tariff.currency: empty"),
        (good.replace('currency = "EUR"', 'currency = "EUR"\nvat = 0.2'),
         r"tariff.vat: unknown key"),
    ]
    for text, msg in cases:
        (tmp_path / "s.toml").write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_site(tmp_path / "s.toml")
