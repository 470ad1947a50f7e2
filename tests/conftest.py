import sys
from pathlib import Path

# tests/ helpers (boundaries.py) are imported by name; importlib import mode needs the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
