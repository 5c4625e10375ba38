"""What a benchmark result must say about where it was measured."""

from __future__ import annotations

import datetime
import os
import platform


def describe() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    import numpy as np
    import scipy

    return (f"{datetime.date.today().isoformat()}; {platform.system()} {platform.machine()}, {cpu}, "
            f"{os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}")
