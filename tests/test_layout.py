"""The folder tells the story: the production path imports nothing from the simulator,
evaluation, fitting or tools; the environment is read in one module; modules stay small.

Static checks over the source (``ast``), so an import inside a function counts too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

MINING = Path(__file__).resolve().parents[1] / "mining"
#: Packages a night's run imports (stages → spark/core/io/privacy → report).
PRODUCTION = ("stages", "spark", "core", "io", "privacy", "report")
#: What production must never import: the simulator, evaluation against gold, model fitting,
#: operator tools and the CLI (the highest module).
FORBIDDEN = ("mining.sim", "mining.eval", "mining.fit", "mining.tools", "mining.cli")


def _modules(*packages: str) -> list[Path]:
    roots = [MINING / p for p in packages] if packages else [MINING]
    return sorted(f for root in roots for f in root.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in ``path``, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


@pytest.mark.parametrize("path", _modules(*PRODUCTION), ids=lambda p: str(p.relative_to(MINING)))
def test_production_imports_no_simulator_evaluation_fitting_or_tools(path):
    bad = [f"line {line}: {mod}" for line, mod in _imports(path) if _forbidden(mod)]
    assert not bad, f"{path.relative_to(MINING.parent)} imports {bad}"


def test_the_import_rule_catches_a_nested_import(tmp_path):
    """The scan is not vacuous: an import inside a function is found and flagged."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from mining.eval import evaluation\n    return evaluation\n")
    assert [m for _, m in _imports(f) if _forbidden(m)] == ["mining.eval", "mining.eval.evaluation"]


def test_top_level_holds_at_most_twelve_modules():
    top = sorted(p.name for p in MINING.glob("*.py"))
    assert len(top) <= 12, top


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(MINING)))
def test_no_module_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= 500


def _environment_reads(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            lines.append(node.lineno)
    return lines


def test_the_environment_is_read_in_one_module():
    readers = {str(p.relative_to(MINING)): lines for p in _modules() if (lines := _environment_reads(p))}
    assert set(readers) == {"env.py"}, readers
