from pixelseg.cli.main import main

raise SystemExit(main())
