"""Typer commands: ``rtcc demo|serve|worker|openapi|db|config|audit|users|devices``."""
