"""``ardoise-collector``: not built yet."""

import sys


def main(argv=None) -> int:
    print("ardoise-collector: not built yet", file=sys.stderr)
    return 2
