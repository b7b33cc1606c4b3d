"""`python -m api.cli`, as the test fixtures start the stack's processes."""

from api.cli import app

app()
