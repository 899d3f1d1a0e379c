from outfit_compat.cli import main

raise SystemExit(main())
