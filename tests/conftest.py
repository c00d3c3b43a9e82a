"""Shared test set-up: quiet, offline espnet imports and small deterministic fixtures."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NLTK_DATA", str(ROOT / "tools" / "nltk_data"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
