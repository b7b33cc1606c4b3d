"""Loopback servers playing external services (GitHub, Jenkins) with their real wire format."""
