"""Nested models at any depth, without recursion: a trampoline for the walks over models in models.

A model nested in a model nested in a model ... is walked by functions that would naturally recurse
(build the inner model, then the outer; propagate the inner, then the outer). Python bounds recursion
at 1,000 frames, and Keras itself saves and loads models nested several hundred levels deep, so each
such walk is written as a generator that *yields* the generator for its nested work and receives that
work's result back; `run` drives them all from one loop and one explicit stack. The depth of the file
is then bounded only by the readers' own limits (formats/json_config.MAX_MODEL_DEPTH).
"""

from __future__ import annotations

from typing import Any, Generator

Steps = Generator[Any, Any, Any]  # yields a nested Steps, is sent that Steps' return value


def run(steps: Steps) -> Any:
    """Drive `steps` and every nested generator it yields; return its return value."""
    stack = [steps]
    result = None
    while True:
        try:
            nested = stack[-1].send(result)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value
            result = done.value
            continue
        stack.append(nested)
        result = None
