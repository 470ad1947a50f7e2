"""``python -m emd_lipschitz``: the console script (estimate, fit, cluster, bench)."""

from emd_lipschitz._cli import main

raise SystemExit(main())
