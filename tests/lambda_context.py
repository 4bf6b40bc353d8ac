"""The local runtime's Lambda context and by-path import, for invoking handlers in tests."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import ModuleType

from local.functions import FakeLambdaContext as _LocalContext
from local.functions import import_by_path

ROOT = Path(__file__).resolve().parent.parent

# `FakeLambdaContext()`: the context of a function called test-function, 30 s to run.
FakeLambdaContext = partial(
    _LocalContext,
    "test-function",
    "arn:aws:lambda:us-east-1:123456789012:function:test-function",
    512,
    30.0,
)


def load_handler_module(function: str) -> ModuleType:
    """functions/<function>/app.py as its own module (every function is called `app`)."""
    return import_by_path(f"functions_{function}_app", ROOT / "functions" / function / "app.py")
