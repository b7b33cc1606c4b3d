"""The API's request and response models, one module per resource. Responses keep the
Databricks registry API's wire shapes (field names, enum values, `{"request": ...}` envelopes,
epoch-millisecond timestamps) so its clients work unchanged."""
