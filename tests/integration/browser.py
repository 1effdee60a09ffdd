"""The real browser the page tests drive: Debian's Chromium (``make browser``), never a download."""

from __future__ import annotations

import os
import shutil


def chromium_path() -> str:
    """Chromium's executable: ``STORECAST_CHROMIUM``, else ``chromium`` on the PATH; fails saying how to get it."""
    chromium = os.environ.get("STORECAST_CHROMIUM") or shutil.which("chromium")
    assert chromium, (
        "the browser tests need Chromium: `make browser` installs Debian's, or set STORECAST_CHROMIUM"
    )
    return chromium
