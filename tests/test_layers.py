"""The layering promises of DESIGN.md, checked on the source and on a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_rewardkit_never_imports_finetune_or_the_cli():
    imported = _imported_modules(ROOT / "rewardkit")
    assert "finetune" not in imported and "rewardkit_cli" not in imported


def test_metrics_never_touch_models_or_files():
    imported = _imported_modules(ROOT / "rewardkit" / "metrics")
    assert imported <= {"__future__", "collections", "typing", "numpy", "scipy"}, imported


def test_importing_rewardkit_loads_no_model_library():
    code = ("import sys, rewardkit; heavy = {'torch', 'laion_clap', 'transformers', 'finetune', 'librosa'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
