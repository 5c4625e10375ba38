"""Import a script of benchmarks/ (not a package) as a module, for the tests of its pure parts."""

import importlib.util
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(stem: str) -> ModuleType:
    """benchmarks/STEM.py, executed once per call under the module name STEM."""
    spec = importlib.util.spec_from_file_location(stem, BENCHMARKS / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
