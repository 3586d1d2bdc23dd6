"""The platform's benchmark: see bench/README.md. Run with `python bench/run.py [--quick]`."""
