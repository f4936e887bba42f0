from gradmath.cli import main

raise SystemExit(main())
