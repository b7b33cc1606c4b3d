"""GitHub environments: Signoff as a GitHub App's custom deployment protection rule.

- `callback`: where an answer may go (the SSRF rule) and sending it;
- `app_auth`: the App's JWT and its cached installation tokens;
- `verdict`: what the run's requests say, in words;
- `workflow`: `DeploymentGateWorkflow`, one per (run, environment), and `start_gate`;
- `activities`: its activities (`GateActivities`).
"""
