"""Entry point of the ``genhubctl`` console script."""

from __future__ import annotations

from genhub.ctl.app import app


def main() -> None:
    """Run the CLI."""
    app()


if __name__ == "__main__":
    main()
