"""``python -m nuclr``: the console script, also where only ``packages/*/src`` is on the path."""

from nuclr._cli import main

raise SystemExit(main())
