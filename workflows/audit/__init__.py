"""The audit chain's periodic anchor: its activity, workflow and schedule (`anchor`). The chain
itself is the ledger's (`workflows.ledger.chain`, `workflows.ledger.audit`)."""
