"""``python -m forklift``: the command line."""

from forklift.cli.main import main

raise SystemExit(main())
