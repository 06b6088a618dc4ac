"""Statistics over per-image figures: bootstrap confidence intervals and paired tests."""
