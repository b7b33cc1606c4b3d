"""What the API does, apart from HTTP: each module takes the shared `Services`, plain values and
the calling principal, and answers with domain objects or raises `api.services.errors`."""
