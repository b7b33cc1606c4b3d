"""Catching changes made behind Signoff's back.

Signoff keeps, per version, the stage and aliases it expects MLflow to show (the registry
marks, see `ledger.marks.set_pending`). Whatever else MLflow shows was changed directly in MLflow:
an out-of-band change. Two things look for them: MLflow's own webhooks, as they arrive (the
API's `/hooks/mlflow`), and the reconciler, a Temporal schedule that compares every version in
MLflow with the marks every `SIGNOFF_RECONCILE_INTERVAL_S` seconds, so a bypass is caught even
where MLflow's webhooks are not set up. Each change is recorded once in the version's audit
log (`SYSTEM_TRANSITION`, with the change in `system_comment`) and announced to webhooks
(`OUT_OF_BAND_CHANGE`, plus `MODEL_VERSION_TRANSITIONED_*` for a stage change).

- `changes`: the pure part both use (what differs, how a change is logged and announced);
  the API imports only this module;
- `activities`: one pass (`reconcile_registry`);
- `workflow`: the `ReconcileWorkflow` and its schedule.
"""
