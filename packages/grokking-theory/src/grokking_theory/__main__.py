"""``python -m grokking_theory``: the console script, for machines without an installed package."""

from grokking_theory._cli import main

raise SystemExit(main())
