"""``python -m anytask ...`` is the ``anytask`` command."""

from anytask.apps.cli import main

raise SystemExit(main())
