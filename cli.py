"""Run lamp_pl from a checkout: `python cli.py fit --config demo` (same as `lamp-pl`)."""

from lamp_pl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
