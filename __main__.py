"""``python -m clsreg`` (and ``torchrun -m clsreg``) runs the command line."""

import sys

from clsreg.cli import main

if __name__ == "__main__":
    sys.exit(main())
