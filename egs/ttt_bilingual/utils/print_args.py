#!/usr/bin/env python3
"""Usage: print_args.py ARG...

Print the arguments as one shell command line, quoting only where needed, e.g.
``run_args=$(utils/print_args.py "$0" "$@")`` to save a command that can be re-run.
"""

import shlex
import sys

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(1)
    print(shlex.join(sys.argv[1:]))
