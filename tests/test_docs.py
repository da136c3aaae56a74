"""The design pages' code runs: every ```python block of docs/{architecture,records,extending}.md, page by page,
in a fresh interpreter (their reference listings are fenced as ``text``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "docs" / f"{name}.md" for name in ("architecture", "records", "extending")]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def test_design_pages_exist_and_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("architecture", "records", "extending", "results", "models", "scaling", "benchmarks"):
        assert (ROOT / "docs" / f"{page}.md").is_file()
        assert f"docs/{page}.md" in readme


@pytest.mark.parametrize("page", [p for p in PAGES if BLOCK.search(p.read_text(encoding="utf-8"))],
                         ids=lambda p: p.stem)
def test_python_blocks_of_the_page_run_in_order(page, tmp_path):
    code = "\n\n".join(BLOCK.findall(page.read_text(encoding="utf-8")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, f"{page.name}:\n{res.stderr[-3000:]}"
