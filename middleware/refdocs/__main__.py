"""``python -m segmint.middleware.refdocs docs``: regenerate the reference docs."""

from . import main

raise SystemExit(main())
