"""The README and docs/: a newcomer's page of bounded size whose links all work, in the project's own words."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# words about how the project was made, and places outside the repository, have no place in it
FOREIGN = [r"\bsession \d", r"\bsession-\d", r"\bthe lead\b", r"\blead's\b", r"\bhelper'?s?\b", r"\bissue \d",
           r"\bissue's\b", r"\.\./shared", r"/work/"]


def test_readme_is_a_page_not_a_diary():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 12_000, len(text)
    assert "docs/screenshots/" in text


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_local_link_and_image_exists(doc):
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{doc.name}: {target}"
        assert ROOT in path.parents, f"{doc.name}: {target} points outside the repository"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_speak_only_of_the_project(doc):
    text = doc.read_text()
    found = [m.group(0) for pat in FOREIGN for m in re.finditer(pat, text, re.IGNORECASE)]
    assert found == [], f"{doc.name}: {found}"


def test_every_command_of_the_command_line_is_in_the_readme():
    from snw_core.__main__ import _parser
    import argparse
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = (ROOT / "README.md").read_text()
    missing = [c for c in sub.choices if f"python -m snw_core {c}" not in text]
    assert missing == []
