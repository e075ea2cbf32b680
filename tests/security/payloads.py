"""Security cases: npz object arrays, declared sizes in total, memory bounds of a config, and TF graph file ops (issue 14 items 6, 8, 9).

Each Case (tests/security/kit.py) is an attack made from a real file, with its benign twin; BASES are
the extra real files these cases start from (name -> builder(out_dir) -> path), saved once per run.
"""

from __future__ import annotations

from tests.security.kit import Case  # noqa: F401

BASES: dict = {}
CASES: list = []
