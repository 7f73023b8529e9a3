"""`python -m lamp_pl.cli ...`: the same as the `lamp-pl` console script."""

import sys

from lamp_pl.cli import main

sys.exit(main())
