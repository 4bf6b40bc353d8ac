"""XML in and out: both dialects (API-NOTES §1)."""
