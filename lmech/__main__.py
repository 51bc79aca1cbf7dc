"""``python -m lmech`` runs the ``lmech`` command."""
import sys

from lmech.cli import main

if __name__ == "__main__":
    sys.exit(main())
