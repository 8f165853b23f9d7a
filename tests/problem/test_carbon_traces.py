"""Carbon-intensity traces: Electricity Maps' hourly export, the speed-up, and every bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipa_ext.cli import main
from ipa_ext.config.config import load_config
from ipa_ext.errors import ConfigError
from ipa_ext.problem.carbon import CarbonIntensity

from support.paths import VIDEO

HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO\u2082eq/kWh (direct),"
          "Carbon Intensity gCO\u2082eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,Data Source,"
          "Data Estimated,Data Estimation Method")


def grid_row(hour: str, direct: str = "100", lca: str = "150", estimated: str = "false") -> str:
    return f"{hour},USA,CAISO,US-CAL-CISO,{direct},{lca},50,40,caiso.com,{estimated},"


def grid_file(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    p = tmp_path / "grid.csv"
    p.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))  # CRLF, as the exports are
    return p


def hours(n: int, day: str = "2023-06-01") -> list[str]:
    return [grid_row(f"{day} {h:02d}:00:00", direct=str(100 + 10 * h), lca=str(200 + 10 * h)) for h in range(n)]


def config_with(tmp_path: Path, carbon: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {VIDEO / 'profiles.csv'}\ncarbon: {carbon}\n")
    return p


def test_caiso_file_from_a_start_with_a_speed_up(shared_data):
    path = shared_data / "carbon-intensity" / "US-CAL-CISO_2023_hourly.csv"
    c = CarbonIntensity.from_csv(path, start="2023-06-01T07:00Z", hours_per_run_hour=60)
    rows = path.read_text(encoding="utf-8").splitlines()
    first = rows.index(next(r for r in rows if r.startswith("2023-06-01 07:00:00")))
    direct = [float(r.split(",")[4]) for r in rows[first:first + 3]]
    # one grid hour per run minute: run second 0-59 is 07:00, 60-119 is 08:00
    assert [c.at(0), c.at(59.9), c.at(60), c.at(150)] == [direct[0], direct[0], direct[1], direct[2]]
    assert len(c.times_s) == len(rows) - first
    assert "US-CAL-CISO" in c.source and "direct" in c.source and "2 of 8760 hours estimated" in c.source
    lca = CarbonIntensity.from_csv(path, start="2023-06-01 07:00", column="lca")
    assert lca.at(0) == float(rows[first].split(",")[5]) and lca.at(3600) == float(rows[first + 1].split(",")[5])


def test_start_inside_an_hour_and_defaults(tmp_path):
    p = grid_file(tmp_path, hours(4))
    c = CarbonIntensity.from_csv(p)  # from the first hour, direct, real time
    assert [c.at(0), c.at(3599), c.at(3600), c.at(1e9)] == [100, 100, 110, 130]
    c = CarbonIntensity.from_csv(p, start="2023-06-01T01:30:00+00:00", column="lca", hours_per_run_hour=2)
    assert c.times_s == (0.0, 900.0, 2700.0) and c.g_per_kwh == (210, 220, 230)
    c = CarbonIntensity.from_csv(p, start="2023-06-01T03:30:00+02:00")  # 01:30 UTC
    assert c.at(0) == 110


def test_config_keys_reach_the_trace(tmp_path):
    p = grid_file(tmp_path, hours(24))
    c = load_config(config_with(tmp_path, f'{{trace: {p}, start: "2023-06-01T12:00Z", column: lca, '
                                          'hours_per_run_hour: 60}'))
    assert c.carbon.at(0) == 320 and c.carbon.at(60) == 330 and c.settings.carbon_intensity_g_per_kwh == 320
    simple = tmp_path / "simple.csv"
    simple.write_text("time_s,g_per_kwh\n0,300\n3600,200\n")
    c = load_config(config_with(tmp_path, f"{{trace: {simple}, hours_per_run_hour: 60}}"))
    assert c.carbon.at(59) == 300 and c.carbon.at(60) == 200


BAD_FILES = [
    ("another format", ["time,intensity", "0,300"], None, "row 1: not a carbon trace"),
    ("missing hour", [HEADER, *hours(2), grid_row("2023-06-01 04:00:00")], None,
     "row 4: 2 missing hour(s) after 2023-06-01 01:00 UTC (row 3)"),
    ("duplicated hour", [HEADER, *hours(3), grid_row("2023-06-01 02:00:00")], None,
     "row 5: duplicated hour 2023-06-01 02:00 UTC (also row 4)"),
    ("hours out of order", [HEADER, *hours(3), grid_row("2023-06-01 00:00:00")], None,
     "row 5: hour 2023-06-01 00:00 UTC comes after 2023-06-01 02:00 UTC"),
    ("negative", [HEADER, *hours(2), grid_row("2023-06-01 02:00:00", direct="-5")], None,
     "row 4: Carbon Intensity gCO\u2082eq/kWh (direct): must be >= 0, got '-5'"),
    ("non-numeric", [HEADER, *hours(1), grid_row("2023-06-01 01:00:00", lca="n/a")], "lca",
     "row 3: Carbon Intensity gCO\u2082eq/kWh (LCA): expected a number, got 'n/a'"),
    ("NaN", [HEADER, grid_row("2023-06-01 00:00:00", direct="nan")], None, "row 2: Carbon Intensity"),
    ("bad time", [HEADER, *hours(1), grid_row("yesterday")], None,
     "row 3: Datetime (UTC): expected a time like 2023-01-01 00:00:00, got 'yesterday'"),
    ("not on the hour", [HEADER, grid_row("2023-06-01 00:30:00")], None, "row 2: Datetime (UTC): "),
    ("short row", [HEADER, *hours(1), "2023-06-01 01:00:00,USA,100"], None,
     "row 3: expected 11 fields as in the header, got 3"),
    ("no such column", [HEADER.replace(" (LCA)", " (other)"), *hours(1)], "lca", "row 1: no lca carbon-intensity column"),
    ("no rows", [HEADER], None, "carbon trace has no rows"),
]


@pytest.mark.parametrize("name,lines,column,needle", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_one_line_naming_file_and_row(tmp_path, capsys, name, lines, column, needle):
    p = grid_file(tmp_path, lines[1:], header=lines[0])
    carbon = f"{{trace: {p}" + (f", column: {column}" if column else "") + "}"
    assert main(["validate", str(config_with(tmp_path, carbon))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ipa-ext: error: {p}: "), err
    assert needle in err[0], err[0]


@pytest.mark.parametrize("carbon,needle", [
    ('{trace: FILE, start: "2024-01-01T00:00Z"}',
     "FILE: carbon.start: start 2024-01-01 00:00 UTC is outside the file's hours 2023-06-01 00:00 UTC to "
     "2023-06-01 02:00 UTC (rows 2-4)"),
    ('{trace: FILE, start: "2023-05-31T23:59Z"}', "FILE: carbon.start: start 2023-05-31 23:59 UTC is outside"),
    ('{trace: FILE, start: "2023-06-01T03:00Z"}', "FILE: carbon.start: start 2023-06-01 03:00 UTC is outside"),
    ("{trace: FILE, start: noon}", "FILE: carbon.start: expected a UTC time like"),
    ("{trace: FILE, column: co2}", "FILE: carbon.column: must be direct or lca, got 'co2'"),
    ("{trace: FILE, hours_per_run_hour: 0}", "CONFIG: carbon.hours_per_run_hour: must be > 0"),
    ("{trace: FILE, hours_per_run_hour: fast}", "CONFIG: carbon.hours_per_run_hour: expected a number"),
    ("{trace: FILE, speed: 2}", "CONFIG: carbon.speed: unknown key for a carbon trace"),
    ("{intensity_g_per_kwh: 3, start: x}", "CONFIG: carbon: expected {intensity_g_per_kwh: N} or {trace: "),
    ("{trace: SIMPLE, column: lca}", "SIMPLE: carbon.column: applies to Electricity Maps' hourly export only"),
])
def test_bad_carbon_settings_are_one_line(tmp_path, capsys, carbon, needle):
    p = grid_file(tmp_path, hours(3))
    simple = tmp_path / "simple.csv"
    simple.write_text("time_s,g_per_kwh\n0,300\n")
    cfg = config_with(tmp_path, carbon.replace("SIMPLE", str(simple)).replace("FILE", str(p)))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = needle.replace("SIMPLE", str(simple)).replace("CONFIG", str(cfg)).replace("FILE", str(p))
    assert len(err) == 1 and expected in err[0], err


def test_unreadable_and_oversized_files(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="absent.csv: carbon trace not found"):
        CarbonIntensity.from_csv(tmp_path / "absent.csv")
    p = tmp_path / "latin1.csv"
    p.write_bytes(HEADER.replace("\u2082", "\xb2").encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        CarbonIntensity.from_csv(p)
    monkeypatch.setattr("ipa_ext.problem.carbon.MAX_BYTES", 100)
    with pytest.raises(ConfigError, match="larger than"):
        CarbonIntensity.from_csv(grid_file(tmp_path, hours(5)))


def test_simulate_weighs_the_hour_and_reports_grams_per_request(tmp_path, capsys):
    """The adapter's carbon intensity follows the trace when epsilon is an optimizer option."""
    p = grid_file(tmp_path, [grid_row(f"2023-06-01 {h:02d}:00:00", direct=str(1000 if h % 2 else 0))
                             for h in range(24)])
    cfg = tmp_path / "config.yaml"
    cfg.write_text((VIDEO / "config.yaml").read_text().replace("pipeline.yaml", str(VIDEO / "pipeline.yaml"))
                   .replace("profiles.csv", str(VIDEO / "profiles.csv"))
                   + f"carbon: {{trace: {p}, hours_per_run_hour: 60}}\n")
    out = tmp_path / "run"
    assert main(["simulate", str(cfg), "--workload", "synthetic:steady", "--optimizer", "energy-ilp:epsilon=100000",
                 "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["carbon_g_per_served_request"] == pytest.approx(s["carbon_g"] / s["requests"]["served"])
    steps = [json.loads(line) for line in (out / "adaptation.jsonl").read_text().splitlines()]
    chosen: dict[int, set[str]] = {0: set(), 1: set()}
    for x in steps:
        if x["decision"].get("kind") == "optimizer" and x["time_s"] > 120:  # past the backup predictor
            chosen[int(x["time_s"] // 60) % 2].add(json.dumps(x["config"], sort_keys=True))
    assert chosen[0] and chosen[1] and not chosen[0] & chosen[1]  # the decision follows the hour's intensity
