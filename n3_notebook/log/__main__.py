"""`python -m n3_notebook.log`: the last calls; `... dashboard`: the aggregates."""

import sys

from .cli import main

sys.exit(main())
