from factorization_curse._cli import main

raise SystemExit(main())
