"""Headless Chromium for the page's browser test and its documentation screenshot.

Uses the system's Chromium and chromedriver (Debian: ``apt-get install chromium
chromium-driver``) through selenium, with a fresh profile folder and every background
network feature off, so the browser talks to nothing but the local server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("BTDNET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BTDNET_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium_available() -> bool:
    """Whether the Chromium binary and chromedriver are installed."""
    return bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER))


def headless_chromium(profile_dir: str | Path, *, width: int = 1280, height: int = 900) -> Any:
    """A selenium ``webdriver.Chrome`` on headless Chromium with a fresh ``profile_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile_dir}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
