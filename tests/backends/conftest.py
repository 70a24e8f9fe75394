"""Make ``backend_contract`` importable from every backend's test module (tests has no packages)."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
