"""Progress bars (tqdm) that can be switched off."""

from __future__ import annotations

import contextlib

from tqdm.auto import tqdm


@contextlib.contextmanager
def progress_bar(total: int, desc: str, enabled: bool = True):
    bar = tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
