import sys

from agent.cli import main

# Guarded: Mario's worker processes are spawned, and spawn re-imports __main__.
if __name__ == "__main__":
    sys.exit(main())
