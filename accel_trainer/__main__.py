import sys

from accel_trainer.cli import main

sys.exit(main())
