"""The composition root: the product is the bot (``bot``) with the human desk (``handoff_gateway``).

``bot`` never imports ``handoff_gateway``; ``handoff_gateway`` depends only on ``bot``'s public seams; only
this package imports both (checked by import-linter, ``make lint``, and tests/test_architecture.py)."""
