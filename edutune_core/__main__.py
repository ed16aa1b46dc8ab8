import sys

from edutune_core.cli import main

sys.exit(main())
