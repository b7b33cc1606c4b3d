"""The TLS context the outbound clients share verifies servers, and is made once."""

from __future__ import annotations

import ssl

from workflows.tls import verifying_context


def test_the_shared_context_verifies_certificates_and_host_names() -> None:
    for trust_env in (True, False):
        context = verifying_context(trust_env=trust_env)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded
        assert verifying_context(trust_env=trust_env) is context
