"""The repository stands alone: no tracked file points at reference pages that
live outside it. Plant-model figures are in docs/models.md, toolchain facts in
docs/toolchain.md, the architecture in docs/architecture.md."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Built from parts so that this file does not match itself.
FORBIDDEN = re.compile(
    "|".join([
        r"PLANT_" + r"MODELS\.md",
        r"PLANT_" + r"MODELS\s+section",   # the bare form the code comments used
        r"TOOL" + r"CHAIN\.md",
        r"STY" + r"LE\.md",
        r"\.\./" + r"shared\b",            # a path into a sibling shared/ folder
    ]))


def tracked_files():
    try:
        r = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = [n for n in r.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    return [n for n in names if not n.startswith("typings/")]


def test_no_reference_outside_the_repository():
    hits = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            m = FORBIDDEN.search(line)
            if m:
                hits.append("%s:%d: %s" % (name, lineno, m.group(0)))
    assert not hits, ("files cite pages that are not in the repository (use docs/models.md, "
                      "docs/toolchain.md, docs/architecture.md):\n" + "\n".join(hits))


def test_the_pages_cited_instead_exist():
    for page in ("docs/models.md", "docs/toolchain.md"):
        assert (ROOT / page).is_file(), page
