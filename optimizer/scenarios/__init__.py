"""Synthetic scenarios for demos and tests; every figure in them is made up."""
