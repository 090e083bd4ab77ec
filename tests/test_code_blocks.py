"""Every Python code block of the README and of the documentation's Markdown pages runs as
written.

The blocks of one page run in order, in one namespace, in a fresh working directory (a page
may build on its earlier blocks, as a reader does). The notebook pages (``file_format:
mystnb``) are executed by the documentation build instead. ``make docs`` runs this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    built = (ROOT / "docs" / "_build", ROOT / "docs" / "jupyter_execute")
    return [
        page
        for page in pages
        if not any(folder in page.parents for folder in built)
        and "file_format: mystnb" not in page.read_text(encoding="utf-8")
        and BLOCK.search(page.read_text(encoding="utf-8"))
    ]


def test_the_pages_with_code_are_found():
    names = {page.relative_to(ROOT).as_posix() for page in _pages()}
    assert {"README.md", "docs/training.md", "docs/disentanglement.md"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_python_block_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__main__"}
    for number, match in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
        line = page.read_text(encoding="utf-8")[: match.start()].count("\n") + 2
        code = compile(match.group(1), f"{page.name}, block {number} (line {line})", "exec")
        exec(code, namespace)
