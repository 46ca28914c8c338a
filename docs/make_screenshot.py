"""Render a run's report.html in headless Chromium and save a full-page screenshot.

    python docs/make_screenshot.py --out demo/mining/runs/2026-11-03 --gold demo/gold

writes ``docs/report.png`` (viewport 1200 px wide, full page, palette-quantized PNG to stay
under 1 MB). The page is built with :func:`mining.eval.report.write_evaluation_report` (the run
report, plus the gold figures with ``--gold`` or ``--evaluation``) into a temporary folder
(``--html`` keeps it); ``--evaluation evaluation.json`` reuses a ``mining evaluate --json``
file instead of recomputing the gold figures (about 20 s). Needs Debian's
``chromium`` (``/usr/bin/chromium``) and the ``playwright`` Python package; no browser
download.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
#: Flags for this network-less machine (see the workspace's machine notes).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def screenshot(html_path: Path, png_path: Path, width: int = 1200) -> None:
    """Full-page PNG of the file ``html_path`` at ``width`` CSS px (scale 1), in a fresh
    Chromium profile."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": width, "height": 900}, device_scale_factor=1)
        page = ctx.new_page()
        page.goto(html_path.resolve().as_uri())
        page.screenshot(path=str(png_path), full_page=True)
        ctx.close()


def quantize(png_path: Path, colors: int = 256) -> None:
    """Rewrite the PNG with a ``colors``-entry palette (pillow, a matplotlib dependency)."""
    from PIL import Image

    with Image.open(png_path) as im:
        im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(png_path, optimize=True)


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="the run's OUT folder")
    ap.add_argument("--gold", help="the simulator's gold folder (adds the reliability diagram)")
    ap.add_argument("--evaluation", help="a `mining evaluate --json` file of this run")
    ap.add_argument("--png", default=str(ROOT / "docs" / "report.png"))
    ap.add_argument("--html", help="also keep the report here")
    ap.add_argument("--width", type=int, default=1200)
    args = ap.parse_args(argv)

    from mining.eval.report import write_evaluation_report

    evaluation = json.loads(Path(args.evaluation).read_text()) if args.evaluation else None
    with tempfile.TemporaryDirectory() as tmp:
        html_path = Path(args.html) if args.html else Path(tmp) / "report.html"
        write_evaluation_report(args.out, html_path, args.gold, evaluation=evaluation)
        png = Path(args.png)
        png.parent.mkdir(parents=True, exist_ok=True)
        screenshot(html_path, png, args.width)
    quantize(png)
    print(f"{png} ({png.stat().st_size:,} bytes)")
    return png


if __name__ == "__main__":
    main()
