"""The documentation stays true: docs/cli.md is what docs/gen_cli.py generates from the
current parser, README.md stays short, and every relative link in README.md and docs/*.md
points at a file inside the repository. No Spark, no Airflow: a few hundred milliseconds."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML_LINK = re.compile(r"<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.I)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)     # https:, mailto:, //host


def _gen_cli():
    spec = importlib.util.spec_from_file_location("docs_gen_cli", ROOT / "docs" / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors of a Markdown file: lower case, punctuation dropped, spaces to
    '-', a repeated heading suffixed -1, -2, ..."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(text: str) -> list[str]:
    """Link targets of a Markdown file (inline, reference and HTML), outside fenced code."""
    text = FENCE.sub("", text)
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text) + HTML_LINK.findall(text)


@pytest.fixture
def columns_100(monkeypatch):
    """argparse wraps help to $COLUMNS; docs/cli.md is generated at 100."""
    monkeypatch.setenv("COLUMNS", "100")


def test_cli_reference_is_current(columns_100):
    expected = _gen_cli().render()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == expected, "docs/cli.md is stale: run `python docs/gen_cli.py` and commit docs/cli.md"


def test_cli_reference_covers_every_command(columns_100):
    gen = _gen_cli()
    from mining.cli import build_parser

    titles = {" ".join(("mining", *path)) for path, _ in gen._commands(build_parser())}
    assert {"mining", "mining run", "mining config show", "mining export-dataset"} <= titles
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for title in titles:
        assert f"\n## {title}\n" in text, f"docs/cli.md has no section for `{title}`"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines (at most {README_MAX_LINES}): "
                                       "move detail into docs/ and link it")


def test_heading_anchors():
    text = "# Two commands\n## Output contract of a run (`--out OUT`)\n### docker compose: A + b\n## Two commands\n"
    assert _anchors(text) == {"two-commands", "output-contract-of-a-run---out-out", "docker-compose-a--b",
                              "two-commands-1"}


def test_link_patterns():
    sample = ('see [a](docs/a.md#x), [`b`](mining/b.py), ![img](docs/p.png "t"), [c](https://x.org/y)\n'
              '[ref]: schemas/\n<img src="docs/report.png" alt="r">\n```\n[no](inside/fence.md)\n```\n')
    assert sorted(_links(sample)) == sorted(["docs/a.md#x", "mining/b.py", "docs/p.png", "https://x.org/y",
                                             "schemas/", "docs/report.png"])


def _link_problems(doc: Path, text: str, root: Path = ROOT) -> list[str]:
    """What is wrong with the links of ``text`` (the content of ``doc``): a relative link that
    leaves ``root`` or names no file, a heading anchor that does not exist, ../shared."""
    problems = []
    if "../shared" in text:
        problems.append("mentions ../shared, which a clone of the repository does not have")
    root = root.resolve()
    for target in _links(text):
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if path.startswith("/"):
            problems.append(f"{target}: absolute path (use a path relative to {doc.name})")
            continue
        resolved = (doc.parent / path).resolve()
        if resolved != root and root not in resolved.parents:
            problems.append(f"{target}: leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif "#" in target and resolved.suffix == ".md":
            anchor = target.split("#", 1)[1]
            if anchor not in _anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(root)}")
    for anchor in (t[1:] for t in _links(text) if t.startswith("#")):
        if anchor not in _anchors(text):
            problems.append(f"#{anchor}: no such heading in {doc.name}")
    return problems


def test_link_check_flags_bad_links(tmp_path):
    """The link check is not vacuous: each kind of bad link is reported."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n## Some section\n")
    doc = tmp_path / "docs" / "b.md"
    text = ("[ok](a.md#some-section) [ok](../docs/) [ok](https://example.org/x) [ok](#here)\n# Here\n"
            "[1](../../shared/DESIGN.md) [2](../../../etc/passwd) [3](missing.md) [4](a.md#nope) "
            "[5](/abs/path) [6](#nowhere)\n")
    problems = _link_problems(doc, text, tmp_path)
    assert problems[0].startswith("mentions ../shared")
    assert [p.split(":")[0] for p in problems[1:]] == ["../../shared/DESIGN.md", "../../../etc/passwd",
                                                       "missing.md", "a.md#nope", "/abs/path", "#nowhere"]


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path):
    problems = _link_problems(doc, doc.read_text(encoding="utf-8"))
    assert not problems, f"{doc.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_readme_layout_names_every_module():
    """The layout table is complete: every module of the package is named on its package's
    row (``mining/<pkg>/``), and every top-level module by its path."""
    readme = (ROOT / "README.md").read_text()
    rows = {line.split("|")[1]: line for line in readme.splitlines() if line.startswith("| [`mining/")}
    missing = []
    for path in sorted((ROOT / "mining").rglob("*.py")):
        rel = path.relative_to(ROOT / "mining")
        if path.name == "__init__.py":
            continue
        if len(rel.parts) == 1:
            if f"`mining/{rel.name}`" not in readme:
                missing.append(str(rel))
            continue
        row = next((line for key, line in rows.items() if f"`mining/{rel.parts[0]}/`" in key), "")
        if f"`{path.stem}`" not in row:
            missing.append(str(rel))
    assert not missing, f"README layout table does not name: {missing}"
