"""``python -m entity_diffusion`` = the ``entity-diffusion`` console script."""

from entity_diffusion._cli import main

raise SystemExit(main())
