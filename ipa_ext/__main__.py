"""``python -m ipa_ext`` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
