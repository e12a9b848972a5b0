"""Screenshot of a leaderboard report.html in headless Chromium (Debian's, through Playwright), as the
README shows it: python docs/results/scripts/report_screenshot.py runs/lb/ppo_dpo/report.html docs/leaderboard.png"""
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

html, png = Path(sys.argv[1]).resolve(), sys.argv[2]
height = int(sys.argv[3]) if len(sys.argv) > 3 else 0  # 0 = the whole page
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    page = browser.new_page(viewport={"width": 1250, "height": height or 900})
    page.goto(html.as_uri())
    page.screenshot(path=png, full_page=not height)
    browser.close()
print(png)
