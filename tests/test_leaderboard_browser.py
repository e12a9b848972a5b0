"""report.html in a real headless Chromium (Debian's `chromium`, which `make install` puts in place when it is
missing, driven by Playwright with that executable): the page opens, the table and every chart are there
and drawn, and a screenshot is saved. Under CI (CI=true) a missing browser is a failure, not a skip."""
from __future__ import annotations

import json
import os
import shutil

import pytest

import alignkit.plugins  # noqa: F401
from alignkit.data.convert import write_jsonl
from alignkit.leaderboard import LeaderboardConfig, run_leaderboard
from conftest import make_pairs

CHROMIUM = "/usr/bin/chromium"
# without the background-networking switches Chromium keeps calling home on a closed network
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = ("the playwright package" if sync_playwright is None else
               CHROMIUM if not (os.path.exists(CHROMIUM) or shutil.which("chromium")) else "")
    if missing:
        msg = f"{missing} is not installed (`make install` installs both)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return sync_playwright


def test_report_opens_in_chromium_with_its_table_and_every_chart(tmp_path, tiny_model_dir):
    sync_playwright = browser_or_skip()
    pairs = write_jsonl(make_pairs(12), tmp_path / "pairs.jsonl")
    out = tmp_path / "lb"
    run_leaderboard(LeaderboardConfig(
        output=str(out), methods=("dpo", "kto"), model=str(tiny_model_dir), data=str(pairs), max_steps=2, batch_size=4,
        seeds=(0, 1), tasks=("bundled", "preferences"), sweep=("dpo.beta=0.5",), isolate=False,
        set=("max_length=96",), task_option=("bundled.n_prompts=4", "bundled.nll_demos=0", "bundled.max_new_tokens=8")),
        log=lambda *a, **k: None)
    charts = json.loads((out / "leaderboard.json").read_text())["charts"]
    assert any(c["id"].startswith("frontier-") for c in charts) and any(c["id"].startswith("curve-") for c in charts)
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                    args=ARGS, timeout=180_000)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.set_default_timeout(180_000)  # a busy 2-core machine (the suite runs in parallel)
            page.goto((out / "report.html").as_uri())
            table = page.locator("table#leaderboard")
            assert table.is_visible()
            assert table.locator("tbody tr").count() == 4  # start, dpo, dpo beta=0.5, kto
            assert "dpo beta=0.5" in table.inner_text()
            figures = page.locator("figure.chart")
            assert figures.count() == len(charts)
            for c in charts:
                svg = page.locator(f"figure#{c['id']} svg")
                box = svg.bounding_box()
                assert box and box["width"] > 100 and box["height"] > 50, c["id"]
                assert svg.locator("rect, polyline, circle").count() > 0, c["id"]
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
