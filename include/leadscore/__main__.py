"""`python -m leadscore ...` entry point."""

import sys

from leadscore.cli import main


def _run() -> int:
    """Run the CLI; LeadScore's own errors end as one line on stderr (exit 1), a real bug keeps its traceback."""
    try:
        return main()
    except Exception as exc:
        if not type(exc).__module__.startswith("leadscore."):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(_run())
