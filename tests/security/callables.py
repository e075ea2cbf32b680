"""Security cases: Callables by any spelling in any config slot, unsafe flags in any spelling, and nesting depth (issue 14 items 1, 2, 5).

Each Case (tests/security/kit.py) is an attack made from a real file, with its benign twin; BASES are
the extra real files these cases start from (name -> builder(out_dir) -> path), saved once per run.
"""

from __future__ import annotations

from tests.security.kit import Case  # noqa: F401

BASES: dict = {}
CASES: list = []
