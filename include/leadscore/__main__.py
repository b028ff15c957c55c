"""`python -m leadscore ...` entry point."""

from leadscore.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
