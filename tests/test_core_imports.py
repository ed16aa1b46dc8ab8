"""The engine stays usable without the web interface."""

import pkgutil
import subprocess
import sys

import edutune_core
from conftest import ROOT


def test_core_never_imports_streamlit():
    """Importing every engine module loads no Streamlit, so workers and the CLI run without it."""
    names = [f"edutune_core.{module.name}" for module in pkgutil.iter_modules(edutune_core.__path__)
             if module.name != "__main__"]
    script = "; ".join([*(f"import {name}" for name in names),
                        "import sys", "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'))"])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(names) > 30
    assert result.stdout.strip() == "[]"
