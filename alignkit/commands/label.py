"""`alignkit label`: AI-labelled preference data; its LabelConfig options and the command are the judges
package's own (alignkit/judges/commands.py), registered here."""
from __future__ import annotations

from ..judges.commands import register  # noqa: F401
