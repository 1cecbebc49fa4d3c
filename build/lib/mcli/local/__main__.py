import sys

from mcli.local.cli import main

sys.exit(main())
