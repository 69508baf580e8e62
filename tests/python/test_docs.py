"""test_docs.py: runs every ```python block of docs/integrations/*.md and integrations/mindspore/README.md, each in a
fresh interpreter from the repository's root, so the integration pages cannot drift from the code.

A page names the modules its snippets need in a comment, `<!-- requires: rotary numpy torch -->`; without one of
them the page's snippets are skipped (MindSpore's run in scripts/test-mindspore.sh, whose venv has MindSpore and the
built librotary_ms.so). The environment is inherited: the installed package, or ROTARY_LIBRARY_DIR and PYTHONPATH
when the suite runs from the source tree.
"""
import glob
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "integrations", "*.md"))) + \
    [os.path.join(ROOT, "integrations", "mindspore", "README.md")]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
REQUIRES = re.compile(r"<!-- requires: ([^>]*?) -->")
TIMEOUT_S = 600


def snippets():
    for page in PAGES:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        m = REQUIRES.search(text)
        needs = m.group(1).split() if m else []
        name = os.path.relpath(page, ROOT)
        for i, code in enumerate(BLOCK.findall(text)):
            line = text[: text.index(code)].count("\n") + 1
            yield pytest.param(name, line, needs, code, id=f"{name}:{line}")


def missing(needs):
    return [m for m in needs if importlib.util.find_spec(m) is None]


def test_every_page_has_snippets():
    names = {p.id.split(":")[0] for p in snippets()}
    expected = {f"docs/integrations/{n}.md" for n in ("python", "pytorch", "huggingface", "onnx", "mindspore", "kv_cache")}
    expected.add("integrations/mindspore/README.md")
    assert expected <= names, f"pages without a ```python block: {sorted(expected - names)}"


@pytest.mark.parametrize("page,line,needs,code", list(snippets()))
def test_snippet(page, line, needs, code):
    lacking = missing(needs)
    if lacking:
        pytest.skip(f"{page} needs {', '.join(lacking)}")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, (f"{page}, the block at line {line}, failed:\n"
                               f"--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
