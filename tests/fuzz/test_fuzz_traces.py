"""Fuzz request traces through ``simulate --trace``: two minutes of the real Twitter trace
(IPA's bursty window) with hostile tokens, separators and containers (.txt, .bz2, .tbz2,
cut short or holding several files), and with windows and damping from the command line."""

from __future__ import annotations

import bz2
import functools
import io
import tarfile
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from . import fuzzkit, hostile


CONFIG = (hostile.VIDEO / "config.yaml").read_text().replace(
    "pipeline.yaml", str(hostile.VIDEO / "pipeline.yaml")).replace("profiles.csv", str(hostile.VIDEO / "profiles.csv"))


@functools.lru_cache(maxsize=1)
def real_window() -> list[str]:
    from ipa_ext.workloads import IPA_WINDOWS, load_trace

    start = IPA_WINDOWS["bursty"][0]
    return [str(x) for x in load_trace(hostile.SHARED / "twitter-trace" / "workload.tbz2")[start:start + 120]]


token = st.one_of(
    st.integers(0, 2**63 - 1).map(str),
    st.sampled_from(["0", "-0", "+4", "00017", "-1", "2.5", "1e3", "9223372036854775807", "9223372036854775808",
                     "99999999999999999999999", "9" * 5000, "nan", "inf", "x", "", "٣", "1_000", "0x10", "+", "-"]),
    st.text(alphabet=st.characters(codec="ascii"), max_size=4),
)
separator = st.sampled_from([" ", "\n", "\t", "\r\n", "  \n", "\x0b", "\x0c", ",", ";"])


@st.composite
def trace_text(draw: st.DrawFn) -> bytes:
    tokens = list(real_window()[: draw(st.sampled_from([0, 1, 5, 10, 30, 60, 120]))])
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(tokens)))
        if draw(st.booleans()) and tokens:
            tokens[min(i, len(tokens) - 1)] = draw(token)
        else:
            tokens.insert(i, draw(token))
    text = draw(separator).join(tokens) if draw(st.integers(0, 4)) else "\n".join(tokens)
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.binary(min_size=1, max_size=8))
    return data


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_trace(d: Path, data: bytes, container: str) -> Path:
    if container == "txt":
        p, raw = d / "trace.txt", data
    elif container == "bz2":
        p, raw = d / "trace.txt.bz2", bz2.compress(data)
    elif container == "tbz2":
        p, raw = d / "workload.tbz2", _tar({"workload.txt": data})
    elif container == "tbz2-two":
        p, raw = d / "workload.tbz2", _tar({"a.txt": data, "b.txt": data})
    elif container == "tbz2-empty":
        p, raw = d / "workload.tbz2", _tar({})
    else:  # cut short
        p, raw = d / "workload.tbz2", _tar({"workload.txt": data})
        raw = raw[: max(1, len(raw) // 2)]
    p.write_bytes(raw)
    return p


COMMANDS = st.sampled_from([
    ["simulate", "{c}", "--trace", "{t}"],
    ["simulate", "{c}", "--trace", "{t}", "--window", "{w}"],
    ["simulate", "{c}", "--trace", "{t}", "--window", "{w}", "--damping", "{n}"],
    ["simulate", "{c}", "--workload", "{t}"],
    ["simulate", "{c}", "--workload", "bursty", "--trace", "{t}", "--window", "{w}"],
])
WINDOWS = st.sampled_from(["0-10"] * 6 + ["0-30"] * 3 + ["10-20", "0-120", "60-10", "0-0", "5-500", "-1-5", "a-b",
                                                        "0:30", "0-99999999999999999999"])


@fuzzkit.FUZZ
@given(data=trace_text(), container=st.sampled_from(["txt"] * 6 + ["bz2", "tbz2", "tbz2-two", "tbz2-empty", "cut"]),
       command=COMMANDS, window=WINDOWS, damping=st.sampled_from(["1", "8"] * 3 + ["0", "-2", "99999999999999999999"]))
def test_hostile_traces(data, container, command, window, damping):
    with tempfile.TemporaryDirectory() as d:
        c = Path(d) / "config.yaml"
        c.write_text(CONFIG)
        t = write_trace(Path(d), data, container)
        argv = [a.format(c=c, t=t, w=window, n=damping) for a in command]
        argv += ["--quiet", "--no-seconds", "--out", f"{d}/out"]
        fuzzkit.check("trace", argv, show=data[:2000].decode("utf-8", "replace"))
