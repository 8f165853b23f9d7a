"""The README is a map: short, its quick start is what CI runs, it links every page in docs/,
and every relative link in README.md and docs/ points to a file and heading that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ipa_ext.cli import build_parser

from support.paths import ROOT

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
MARKDOWN = [README, *PAGES]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} +(.*?) *#* *$", line)):
            base = slug(m.group(1))
            n = seen.get(base, -1) + 1
            seen[base] = n
    return {f"{b}-{i}" if i else b for b, n in seen.items() for i in range(n + 1)}


def links(path: Path) -> list[str]:
    """The relative link targets of a markdown file (web and mail links left out)."""
    targets = LINK.findall(prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def broken(path: Path) -> list[str]:
    """The links of ``path`` whose file, or heading within it, does not exist."""
    bad = []
    for target in links(path):
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target} (no such heading)")
    return bad


def quick_start() -> list[str]:
    """The commands of the README's quick-start block, comments removed."""
    section = README.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [l.split("#", 1)[0].strip() for l in block.splitlines() if l.strip()]


def ci_command(label: str) -> str:
    """The command .ci/run runs under its ``# README: LABEL`` comment."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    at = lines.index(f"# README: {label}")
    return next(l.strip() for l in lines[at + 1:] if l.strip() and not l.startswith("#"))


def test_slugs_follow_github():
    assert slug("The ILP optimizers: `ilp` and `energy-ilp`") == "the-ilp-optimizers-ilp-and-energy-ilp"
    assert slug("`num_state_limit`: k best and pools") == "num_state_limit-k-best-and-pools"
    assert slug("Differences from upstream IPA's loop") == "differences-from-upstream-ipas-loop"
    assert slug("Attribution to pipeline stages (Kepler-style)") == "attribution-to-pipeline-stages-kepler-style"


def test_the_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "b.md").write_text("# Title\n\n## A `b` part\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md) [ok](b.md#a-b-part) [web](https://x.invalid/y) `[code](gone.md)`\n"
                    "[gone](gone.md) [bad](b.md#not-a-heading) [self](#nowhere)\n")
    assert broken(page) == ["gone.md (no such file)", "b.md#not-a-heading (no such heading)",
                            "#nowhere (no such heading)"]


def test_links_are_found():
    assert len(links(README)) > 20 and sum(len(links(p)) for p in PAGES) > 20


def test_the_readme_is_a_map_of_at_most_200_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_relative_links_point_to_existing_files_and_headings(path):
    assert not broken(path), f"{path.relative_to(ROOT)}: broken links {broken(path)}"


def test_the_readme_links_every_docs_page():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README)}
    assert [p.name for p in PAGES if p.resolve() not in linked] == []


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_each_page_opens_with_a_title_and_what_it_covers(path):
    paragraphs = path.read_text(encoding="utf-8").split("\n\n")
    assert paragraphs[0].startswith("# ") and "\n" not in paragraphs[0], paragraphs[0]
    assert paragraphs[1][0].isalpha() or paragraphs[1][0] in "`*", paragraphs[1]


def test_the_quick_start_is_what_ci_runs():
    install, main_job, test = quick_start()
    assert install == ci_command("install")
    assert test == ci_command("test")
    words = shlex.split(main_job)
    assert words[:2] == ["ipa-ext", "simulate"] and (ROOT / words[2]).is_file(), main_job
    assert build_parser().parse_args(words[1:]).command == "simulate"
