"""External CI systems as validation checks: dispatch a job, then learn its outcome by
callback or by polling. One module per system, each implementing `CiClient` (`base.py`);
the callback token in `callback.py`. The activities are `workflows.activities.ci`, the
workflow's side `workflows.transition.ci_check`."""
