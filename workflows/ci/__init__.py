"""External CI systems as validation checks: dispatch a job, then learn its outcome by
callback or by polling. One module per system, each implementing `CiClient`."""
