"""The documentation site builds (``mkdocs build --strict``) and its pages render in Chromium.

Skipped without the ``[docs]`` extra or a Chromium binary (Debian: ``apt-get install chromium``).
The built site is served on the loopback interface and opened in headless Chromium with its
networking features off. To keep this to one browser start, a tour page shows every page of
the site in its own frame, side by side: the run must log nothing to the console (Chromium's
``--enable-logging=stderr`` prints every console message, of the frames too, as a ``CONSOLE``
line) and every frame's part of the screenshot must be non-blank. A planted page (a console
error on an empty page) checks that both detectors see what they must.
"""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TILE, COLUMNS = (640, 500), 3  # frame size in the tour page, frames per row
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
PAGES = {  # path -> text the rendered page must contain
    "": "Install",
    "model/": "Weighted-Score Update",
    "games/reward_report/": "RewardReportEnv",
    "games/online_feedback/": "OnlineFeedbackEnv",
    "games/preference_report/": "PreferenceReportEnv",
    "games/sybils/": "sybil",
    "games/vector/": "SingleLabelerVectorEnv",
    "games/torchrl/": "LabelerTorchRLEnv",
    "mechanisms/practical/": "checkpoints",
    "mechanisms/preferences/": "bt_fit",
    "mechanisms/": "register",
    "mechanisms/sw_max/": "affine maximizer",
    "mechanisms/online/": "OnlineWeighted",
    "mechanisms/differentiable/": "torch_outcome",
    "agents/": "GradientAdversary",
    "cli/": "--quick",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "material"):
        pytest.importorskip(module, reason="the docs site needs the [docs] extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stdout + build.stderr
    tiles = "".join(
        f'<iframe src="/{page}" style="position:absolute;border:0;left:{TILE[0] * (k % COLUMNS)}px;'
        f'top:{TILE[1] * (k // COLUMNS)}px;width:{TILE[0]}px;height:{TILE[1]}px"></iframe>'
        for k, page in enumerate(PAGES))
    (out / "tour.html").write_text(f"<html><body style='margin:0'>{tiles}</body></html>")
    (out / "planted").mkdir()
    (out / "planted" / "index.html").write_text("<html><body><script>console.error('planted error')</script></body></html>")
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _not_blank(pixels) -> bool:
    """Some ink: no single colour covers 95% of the pixels, and more than a flat fill's colours."""
    _, counts = np.unique((pixels[..., :3].reshape(-1, 3) * 255).astype(np.uint8), axis=0, return_counts=True)
    return counts.max() / counts.sum() < 0.95 and len(counts) > 16


def _open(url, tmp_path, size):
    """One Chromium run: ``(console lines, screenshot pixels)``."""
    import matplotlib.image

    if CHROMIUM is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    shot = tmp_path / "page.png"
    run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                          f"--window-size={size[0]},{size[1]}", url],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert shot.is_file(), run.stderr[-3000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line or "net::ERR" in line]
    return console, matplotlib.image.imread(shot)


def test_detectors_see_a_planted_console_error_and_a_blank_page(site, tmp_path):
    console, pixels = _open(site + "planted/", tmp_path, TILE)
    assert any("planted error" in line for line in console)
    assert not _not_blank(pixels)


@pytest.mark.parametrize("page", list(PAGES))
def test_page_has_its_content(site, page):
    import urllib.request

    with urllib.request.urlopen(site + page, timeout=30) as response:
        assert PAGES[page] in response.read().decode()


def test_every_page_renders_without_console_errors(site, tmp_path):
    rows = -(-len(PAGES) // COLUMNS)
    console, pixels = _open(site + "tour.html", tmp_path, (TILE[0] * COLUMNS, TILE[1] * rows))
    assert not console, console
    blank = [page for k, page in enumerate(PAGES)
             if not _not_blank(pixels[TILE[1] * (k // COLUMNS):TILE[1] * (k // COLUMNS + 1),
                                      TILE[0] * (k % COLUMNS):TILE[0] * (k % COLUMNS + 1)])]
    assert not blank, f"blank in the screenshot: {blank}"
