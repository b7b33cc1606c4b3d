"""Harnesses that print Signoff's performance figures beside MLflow's own, from one run on the
embedded stack (`signoff dev` in a temporary directory). Each module measures one figure of the
performance goals (`python -m benchmarks.<name> [--quick]`); `python -m benchmarks.run_all`
runs them all on one stack and prints the summary table. They print figures, never assert."""
