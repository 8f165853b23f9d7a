"""Fuzz command lines: every command (but those that run a child command, serve or touch a
cluster: ``energy measure``, ``energy serve``, ``adapt``) with its options in any order,
hostile values, missing and unknown arguments. Runs in a scratch folder holding copies of
its inputs, and every path is a relative name inside it, so that an input path that lands
on an output option (``--csv``) overwrites only a copy."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from . import fuzzkit, hostile


SHORT = (hostile.VIDEO / "config.yaml").read_text().replace(
    "pipeline.yaml", str(hostile.VIDEO / "pipeline.yaml")).replace(
    "profiles.csv", str(hostile.VIDEO / "profiles.csv")).replace("duration_s: 1200", "duration_s: 30")
PERF_LOG = "".join((hostile.SHARED / "perf-logs" / "ipa-video-bursty-pkg-ram.txt").open().readlines()[:200])
IPA = (hostile.SHARED / "ipa-configs" / "video-1.yaml").read_text()

number = st.one_of(
    st.sampled_from(["10", "0", "-1", "0.5", "1e400", "-1e400", "nan", "inf", "-inf", "1e-320", "99999999999999999999",
                     "", " ", "abc", "1,2", "0x10", "5e-324"]),
    st.floats().map(repr),
    st.integers(-(10**6), 10**6).map(str),
)
text = st.one_of(st.sampled_from(hostile.EDGE_STRINGS), st.text(max_size=10))
policies = st.lists(st.sampled_from(["ilp", "energy-ilp", "brute-force", "fa2-low", "rim", "infaas", "vpa",
                                     "infadapter", "ipa", "nope", "ilp:solver=cbc", "ilp:nope=1", "energy-ilp:delta=.nan",
                                     "", "q-learning:episodes=3:warm_episodes=1", "ilp:time_limit_s=-1"]),
                    min_size=1, max_size=3).map(",".join)
workloads = st.one_of(st.sampled_from(["steady", "bursty", "synthetic:diurnal", "synthetic:nope", "twitter:bursty",
                                       "fluctuating", "trace.txt", "nosuch", "", "a,b", "step,step"]), text)
out_path = st.sampled_from(["out", "o/deeper", "x" * 300, "", "out.csv", "o/p.png"])

VALUES = {
    "--rate": number, "--delta": number, "--epsilon": number, "--power-cap": number, "--at": number,
    "--alpha": number, "--beta": number, "--gamma": number, "--damping": number, "--interval": number,
    "-k": st.sampled_from(["1", "2", "5", "0", "-1", "x", "1e3", ""]),
    "--num-states": st.sampled_from(["1", "3", "0", "x"]),
    "--deltas": st.one_of(st.lists(number, max_size=4).map(",".join), st.just("0,0.5,1")),
    "--optimizer": policies.map(lambda p: p.split(",")[0]), "--base": policies.map(lambda p: p.split(",")[0]),
    "--policies": policies, "--workloads": workloads, "--workload": workloads,
    "--window": st.sampled_from(["0-10", "0-30", "10-5", "a-b", "", "0-99999999999999999999", "-5-5"]),
    "--trace": st.sampled_from(["trace.txt", "nosuch.txt", ".", "/dev/null", "", "x" * 300]),
    "--source": st.sampled_from(["rapl", "perf", "estimate", "nvml", "kepler", "nope", ""]),
    "-o": st.sampled_from(["max_power_w=1e400", "estimate.idle_w=-1", "rapl.sysfs_root=/nonexistent", "x", "=",
                           "estimate.cpus=0", "perf.interval_ms=abc", "k=[&a [1,1], *a]", "estimate.tdp_w=.nan",
                           "rapl.sysfs_root=" + "x" * 300, "perf.pmu_root=" + "/x" * 3000, "estimate.proc=.",
                           "estimate.cpus=1e400", "rapl.max_power_w=99999999999999999999999"]),
    "--config": st.sampled_from(["config.yaml", "nosuch.yaml", "ipa.yaml", "/dev/null", ".", "x" * 300]),
    "--out": out_path, "--csv": out_path, "--plot": out_path,
}
COMMANDS = {
    "plugins": (["--json", "--config"], []),
    "validate": (["--json"], ["config"]),
    "optimize": (["--rate", "--optimizer", "-k", "--num-states", "--delta", "--epsilon", "--power-cap", "--at",
                  "--json"], ["config"]),
    "pareto": (["--rate", "--deltas", "--alpha", "--beta", "--gamma", "--optimizer", "--out", "--json"], ["config"]),
    "simulate": (["--workload", "--optimizer", "--out", "--no-seconds", "--json", "--trace", "--window", "--damping",
                  "--base", "--quiet"], ["config"]),
    "bench": (["--policies", "--workloads", "--out", "--no-plots", "--trace", "--window", "--damping", "--base",
               "--quiet"], ["config"]),
    "energy probe": (["--source", "-o", "--config", "--json"], []),
    "energy report": (["--json", "--csv", "--plot"], ["log"]),
}
POSITIONALS = {
    "config": st.sampled_from(["config.yaml"] * 6 + ["ipa.yaml", "nosuch.yaml", ".", "/dev/null", "", "trace.txt",
                                                     "x" * 300]),
    "log": st.sampled_from(["perf.txt", "perf.txt", "nosuch.log", ".", "/dev/null", "config.yaml", "", "x" * 300]),
}


@st.composite
def argv(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(sorted(COMMANDS)))
    flags, positional = COMMANDS[name]
    out = draw(st.sampled_from([[], [], [], ["--strict"], ["--version"], ["--help"], ["--nope"]])) + name.split()
    if name == "bench":
        out.append("--no-plots")  # plots are slow and tested elsewhere
    chosen = draw(st.lists(st.sampled_from(flags), max_size=5))
    if name in ("optimize", "pareto") and draw(st.integers(0, 3)):
        chosen.append("--rate")
    if name == "bench" and draw(st.integers(0, 3)):
        chosen.append("--policies")
    for f in chosen:
        out.append(f)
        if f in VALUES:
            out.append(draw(VALUES[f]))
    for p in positional:
        if draw(st.integers(0, 9)):  # sometimes missing
            out.insert(draw(st.integers(len(name.split()), len(out))), draw(POSITIONALS[p]))
    if draw(st.integers(0, 9)) == 0:
        out.insert(draw(st.integers(0, len(out))), draw(text | st.sampled_from(["--", "-", "--json=1", "-x"])))
    if name == "simulate" and "--quiet" not in out:
        out.append("--quiet")
    return out


@fuzzkit.FUZZ
@given(args=argv())
def test_hostile_command_lines(args):
    with tempfile.TemporaryDirectory() as d, fuzzkit.chdir(d):
        Path(d, "config.yaml").write_text(SHORT)
        Path(d, "ipa.yaml").write_text(IPA)
        Path(d, "perf.txt").write_text(PERF_LOG)
        Path(d, "trace.txt").write_text(" ".join(str(10 + i % 7) for i in range(40)))
        fuzzkit.check("cli-args", args, show=" ".join(args))
