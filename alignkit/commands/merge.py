"""`alignkit merge`: its MergeConfig options and the command are the merge package's own
(alignkit/merge/commands.py), registered here."""
from __future__ import annotations

from ..merge.commands import register  # noqa: F401
