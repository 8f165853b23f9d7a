"""Fuzz perf interval logs through ``energy report``: generated ``perf stat -I`` logs in the
human format and the ``-x,`` CSV format with hostile fields, and mutations of the real logs
in ``../shared/data/perf-logs`` (plain, gzip and cut-short gzip)."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from . import fuzzkit, hostile


REAL = sorted((hostile.SHARED / "perf-logs").glob("*"))
REAL_LINES = {}
for _p in REAL:
    _raw = _p.read_bytes()
    _text = (gzip.decompress(_raw) if _raw[:2] == b"\x1f\x8b" else _raw).decode("utf-8", "replace")
    REAL_LINES[_p.name] = _text.splitlines()[:80]

count = st.one_of(
    st.floats(0, 1e6).map(lambda x: f"{x:.2f}"),
    st.sampled_from(["74.55", "0.00", "1,234.50", "1'234.5", "<not counted>", "<not supported>", "1e400", "-1e400",
                     "nan", "inf", "-3.2", "9" * 400, "9" * 3000, "", "0x10", "1.2.3", "1e-400", "<not", "Joules"]),
    st.text(max_size=6),
)
time_s = st.one_of(st.floats(0, 1e5).map(lambda x: f"{x:.9f}"),
                   st.sampled_from(["1.000107406", "0.000000000", "-1.0", "1e400", "nan", "", "9" * 300 + ".1"]))
unit = st.sampled_from(["Joules", "", "msec", "Watts", "J", "Joules Joules", "💥"])
event = st.sampled_from(["power/energy-pkg/", "power/energy-ram/", "power/energy-cores/", "power/energy-psys/",
                         "power/energy-gpu/", "cycles", "", "power/", "/", "x" * 300, "power/energy-pkg/,x"])
trailer = st.sampled_from(["", "  (50.00%)", "  # 3.1 W", "  ( 100.00% )", "  # 💥"])


@st.composite
def rows(draw: st.DrawFn) -> list[list[str]]:
    """Valid interval rows (time, count, unit, event) for one or two events, then 0-3 fields
    replaced by hostile ones."""
    events = draw(st.sampled_from([["power/energy-pkg/"], ["power/energy-pkg/", "power/energy-ram/"],
                                   ["power/energy-psys/", "power/energy-cores/"]]))
    out = []
    for i in range(draw(st.integers(0, 20))):
        for e in events:
            out.append([f"{i + 1.000107406:.9f}", f"{draw(st.floats(0, 500)):.2f}", "Joules", e])
    for _ in range(draw(st.integers(0, 3))):
        if out:
            r, f = draw(st.integers(0, len(out) - 1)), draw(st.integers(0, 3))
            out[r][f] = draw([time_s, count, unit, event][f])
    return out


@st.composite
def human_log(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from([["# started on Fri Nov 29 03:10:31 2024", "",
                                   "#           time             counts   unit events"], []]))
    for t, c, u, e in draw(rows()):
        lines.append(f"{t:>16} {c:>18} {u} {e}{draw(trailer)}")
    if draw(st.booleans()):
        lines += ["", " Performance counter stats for 'system wide':", "", "       1.2 seconds time elapsed"]
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


@st.composite
def csv_log(draw: st.DrawFn) -> str:
    lines = []
    without_interval = draw(st.sampled_from([False, False, False, False, True]))
    for t, c, u, e in draw(rows()):
        fields = [t, c, u, e, draw(st.sampled_from(["1000", "", "x"])), draw(st.sampled_from(["100.00", "", "-1"])),
                  "", ""]
        if without_interval:
            fields = fields[1:]
        lines.append(",".join(fields[: draw(st.sampled_from([len(fields)] * 5 + list(range(1, len(fields)))))]))
    return "\n".join(lines) + "\n"


@st.composite
def real_log_mutation(draw: st.DrawFn) -> str:
    lines = list(REAL_LINES[draw(st.sampled_from(sorted(REAL_LINES)))])
    lines = lines[: draw(st.integers(0, len(lines)))]
    for _ in range(draw(st.integers(0, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["token", "cut", "insert", "delete", "swap"]))
        if op == "token":
            parts = lines[i].split()
            if parts:
                parts[draw(st.integers(0, len(parts) - 1))] = draw(count | time_s | event)
                lines[i] = "     " + "   ".join(parts)
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=40) | st.sampled_from(hostile.EDGE_STRINGS)))
        elif op == "delete":
            lines.pop(i)
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def _report(kind: str, text: str, container: str, out_flag: list[str]) -> None:
    data = text.encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "perf.log"
        if container == "plain":
            log.write_bytes(data)
        else:
            packed = gzip.compress(data)
            log.write_bytes(packed if container == "gzip" else packed[: max(10, len(packed) * 2 // 3)])
        argv = ["energy", "report", str(log)] + [a.format(d=d) for a in out_flag]
        fuzzkit.check(kind, argv, show=text)


CONTAINERS = st.sampled_from(["plain", "plain", "gzip", "cut-gzip"])
FLAGS = st.sampled_from([[], ["--json"], ["--csv", "{d}/out.csv"]])


@fuzzkit.FUZZ
@given(text=human_log(), container=CONTAINERS, flags=FLAGS)
def test_human_perf_logs(text, container, flags):
    _report("perf-log human", text, container, flags)


@fuzzkit.FUZZ
@given(text=csv_log(), container=CONTAINERS, flags=FLAGS)
def test_csv_perf_logs(text, container, flags):
    _report("perf-log csv", text, container, flags)


@fuzzkit.FUZZ
@given(text=real_log_mutation(), container=CONTAINERS, flags=FLAGS)
def test_mutated_real_perf_logs(text, container, flags):
    _report("perf-log real", text, container, flags)
