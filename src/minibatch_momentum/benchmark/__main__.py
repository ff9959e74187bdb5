"""``python -m minibatch_momentum.benchmark``: ``mbm benchmark`` with the same flags."""

import argparse

from minibatch_momentum.benchmark.command import add_arguments, main

parser = argparse.ArgumentParser(prog="python -m minibatch_momentum.benchmark")
add_arguments(parser)
main(parser.parse_args())
