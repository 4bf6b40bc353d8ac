"""XML in and out: both dialects (docs/actions.md, docs/legacy-1.3.md)."""
