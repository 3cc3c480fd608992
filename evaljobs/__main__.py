import sys

from evaljobs.cli import main

sys.exit(main())
