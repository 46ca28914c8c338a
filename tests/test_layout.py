"""The folder tells the story: the production path imports nothing from the simulator,
evaluation, fitting or tools; the environment is read in one module; modules stay small.

Static checks over the source (``ast``), so an import inside a function counts too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

MINING = Path(__file__).resolve().parents[1] / "mining"
#: Packages a night's run imports (stages → spark/core/io/privacy → report), and the
#: top-level modules a job imports (jobs/<stage>.py → stages.runner → entrypoint → config …).
PRODUCTION = ("stages", "spark", "core", "io", "privacy", "report")
PRODUCTION_TOP = ("config.py", "config_layers.py", "entrypoint.py", "env.py", "errors.py", "run_logging.py")
#: What production must never import: the simulator, evaluation against gold, model fitting,
#: operator tools and the CLI (the highest module).
FORBIDDEN = ("mining.sim", "mining.eval", "mining.fit", "mining.tools", "mining.cli")


def _modules(*packages: str) -> list[Path]:
    roots = [MINING / p for p in packages] if packages else [MINING]
    return sorted(f for root in roots for f in root.rglob("*.py"))


def _production_modules() -> list[Path]:
    return _modules(*PRODUCTION) + [MINING / name for name in PRODUCTION_TOP]


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


@pytest.mark.parametrize("path", _production_modules(), ids=lambda p: str(p.relative_to(MINING)))
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
    """Lines that touch the environment: ``os.environ``/``os.getenv``/``os.putenv`` or
    ``from os import environ`` (any alias of ``os`` is caught by its ``import os as``)."""
    lines = []
    os_names = {"os"}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            os_names |= {a.asname for a in node.names if a.name == "os" and a.asname}
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(a.name in ("environ", "getenv", "putenv", "environb") for a in node.names):
            lines.append(node.lineno)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb") \
                and isinstance(node.value, ast.Name) and node.value.id in os_names:
            lines.append(node.lineno)
    return lines


def test_the_environment_scan_catches_aliases_and_from_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os as o\nfrom os import environ\nx = o.environ.get('A')\n")
    assert sorted(_environment_reads(f)) == [2, 3]


def test_the_environment_is_read_in_one_module():
    readers = {str(p.relative_to(MINING)): lines for p in _modules() if (lines := _environment_reads(p))}
    assert set(readers) == {"env.py"}, readers


def test_importing_the_production_path_and_the_cli_loads_no_simulator_evaluation_or_fitting():
    """At run time too: a job's imports (every production module) and ``mining --help``
    (the parser) leave mining.sim/eval/fit/tools out of ``sys.modules``."""
    import subprocess
    import sys

    modules = [".".join(p.relative_to(MINING.parent).with_suffix("").parts) for p in _production_modules()]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
            "from mining.cli import build_parser\nbuild_parser().format_help()\n"
            f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN[:-1]!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
