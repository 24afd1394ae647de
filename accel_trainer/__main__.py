"""`python -m accel_trainer` (what `accelerate launch -m accel_trainer` runs): the CLI."""

import sys

from accel_trainer.cli import main

sys.exit(main())
