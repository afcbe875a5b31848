"""``python -m harness``: the ``wsconform`` command without its console script.

Useful where the script is not on PATH (a checkout used through ``PYTHONPATH``, a worktree beside
an editable install of another checkout).
"""

import sys

from harness.cli import main

sys.exit(main())
