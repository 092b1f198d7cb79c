"""No link in the repository points outside it.

Every Markdown link or image in a tracked ``.md`` file (and ``mkdocs.yml``) must be a
relative path that resolves to a file inside the repository (an optional ``#anchor`` aside);
no web addresses, no absolute paths, no ``../`` that climbs out of the clone (the model is
``docs/model.md``, not a sibling folder).
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, file: ...


def _tracked(*patterns):
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def _links(text):
    return LINK.findall(text) + REFERENCE.findall(text)


def _outside(source: Path, target: str):
    """Why ``target`` (a link in ``source``) leaves the repository, or None."""
    if EXTERNAL.match(target):
        return "a web or absolute address"
    path = target.split("#", 1)[0]
    if not path:
        return None  # an anchor on the same page
    if path.startswith("/"):
        return "an absolute path"
    resolved = (source.parent / path).resolve()
    if not resolved.is_relative_to(ROOT):
        return "a path outside the repository"
    if not resolved.exists():
        return "a missing file"
    return None


def test_link_parser_finds_what_it_must_reject():
    page = ROOT / "docs" / "page.md"
    text = "[m](../../shared/MODEL.md) ![x](https://e.org/a.png) [ok](model.md#1)\n[r]: ../x.md\n"
    found = _links(text)
    assert found == ["../../shared/MODEL.md", "https://e.org/a.png", "model.md#1", "../x.md"]
    assert [_outside(page, t) for t in found] == [
        "a path outside the repository", "a web or absolute address", None, "a missing file"]


def test_no_markdown_link_points_outside_the_repository():
    pages = _tracked("*.md", "mkdocs.yml")
    assert any(p.name == "README.md" for p in pages)
    bad = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in _links(text):
            reason = _outside(page, target)
            if reason:
                bad.append(f"{page.relative_to(ROOT)}: {target} ({reason})")
    assert not bad, "\n".join(bad)


def test_no_reference_to_a_folder_beside_the_clone():
    offenders = [f"{p.relative_to(ROOT)}" for p in _tracked("*.md", "*.py", "*.toml", "*.yml")
                 if p.name != "test_links.py" and re.search(r"\.\./shared|shared/MODEL\.md|\bMODEL\.md",
                                                            p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
