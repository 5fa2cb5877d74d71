"""``python -m tinybpf``: the command line."""

import sys

from tinybpf._cli import main

sys.exit(main())
