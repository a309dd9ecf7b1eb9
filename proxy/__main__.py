import sys

from proxy.cli import main

if __name__ == "__main__":  # not when a worker process (multiprocessing's spawn) imports it again
    sys.exit(main())
