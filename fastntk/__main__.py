"""``python -m fastntk``: the fastntk command line (see fastntk.cli)."""
import sys

from .cli import main

sys.exit(main())
