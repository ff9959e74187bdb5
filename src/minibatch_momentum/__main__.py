import sys

from minibatch_momentum.cli import main

sys.exit(main())
