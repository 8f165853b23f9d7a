"""benchmarks/carbon_aware.py runs end to end: the zone's real intensities drive the run, grams follow joules."""

from __future__ import annotations

import csv
import json
import subprocess
import sys


from support.paths import ROOT, SHARED


def test_one_zone_day_with_an_unknown_policy_skipped(tmp_path):
    out = tmp_path / "ca.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "carbon_aware.py"), "--zones", "DE-LU",
         "--policies", "ipa,no-such-policy", "--out", str(tmp_path / "plots"), "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipping no-such-policy: no optimizer of that name is registered" in proc.stdout
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert (row["zone"], row["policy"], row["energy_quality"]) == ("DE-LU", "ipa", "estimated")
    series = data["runs"]["DE-LU"]["series"]["ipa"]
    # one grid day in the 20-minute window: 22:00 UTC on 31 May is local midnight in June
    with open(SHARED / "data" / "carbon-intensity" / "DE-LU_2023_hourly.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    col = next(i for i, h in enumerate(head) if "(direct" in h)
    start = next(i for i, r in enumerate(rows) if r[0].startswith("2023-05-31 22:00"))
    day = [float(r[col]) for r in rows[start:start + 24]]
    seen = {p["g_per_kwh"] for p in series}
    assert seen <= set(day) and len(seen) >= 20
    # grams per request lie between the day's cleanest and dirtiest hour times joules per request
    jpr = row["j_per_request"]
    assert min(day) * jpr / 3.6e6 <= row["g_per_request"] <= max(day) * jpr / 3.6e6
