"""The README's Python examples run as written."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    code = "\n".join(blocks).replace('"out/llf"', repr(str(tmp_path / "llf")))
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert (tmp_path / "llf" / "kpis.json").exists()
    sp = scope["setpoints"]
    assert sp.current_a.sum() > 0 and sp.current_a.max() <= 16.0
