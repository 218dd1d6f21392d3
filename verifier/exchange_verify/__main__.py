import sys

from exchange_verify.cli import main

sys.exit(main())
