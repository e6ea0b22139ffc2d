"""Render the interactive timeline (sysdig_kit.analysis.interactive) in headless Chromium and
save a screenshot: proof that the self-contained HTML draws offline, and the picture in docs/.

    python3 tools/screenshot_timeline.py                       # -> docs/timeline.png
    python3 tools/screenshot_timeline.py CAPTURE --html t.html -o t.png --threads 12

Needs Chromium (Debian: `apt-get install chromium`; not a test dependency). Chromium runs
with no network (--proxy-server to nowhere): anything the page fetched from outside would be
missing from the picture. The HTML (~4 MB: plotly.js inlined) is kept only with --html.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT / "tests" / "data" / "arm64" / "old-era-zsh-s4096.scap"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no Chromium on PATH: apt-get install chromium")


def screenshot(html: Path, png: Path, size=(1400, 900)) -> None:
    with tempfile.TemporaryDirectory(prefix="kit-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--hide-scrollbars", f"--user-data-dir={profile}",
               "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
               f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=10000",
               f"--screenshot={png.resolve()}", html.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    if r.returncode or not png.is_file():
        raise SystemExit(f"chromium failed (rc {r.returncode}): {r.stderr.strip()[-500:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("capture", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "timeline.png")
    ap.add_argument("--html", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=12, help="the busiest threads drawn")
    a = ap.parse_args()

    import sysdig_kit
    from sysdig_kit.analysis.interactive import timeline_figure, timeline_html

    frame = sysdig_kit.read(a.capture)
    height = int(timeline_figure(frame, a.threads).layout.height) + 20  # no blank below
    with tempfile.TemporaryDirectory(prefix="kit-timeline-") as tmp:
        html = a.html or Path(tmp) / "timeline.html"
        timeline_html(frame, html, max_threads=a.threads)
        screenshot(html, a.output, (1400, height))
    print(f"{a.output}: {a.output.stat().st_size:,} bytes, {a.capture.name} in headless "
          f"Chromium")


if __name__ == "__main__":
    main()
