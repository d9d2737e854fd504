"""genhubctl, the GenHub operator CLI: ``genhub.ctl.app`` is its Typer application."""
