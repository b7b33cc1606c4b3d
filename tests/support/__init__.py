"""What tests share besides fixtures: real services started as subprocesses, loopback servers
playing external systems (GitHub, Jenkins, webhook receivers) with their real wire format, and
helpers for talking to the API and reading MLflow. Fixtures live in `conftest.py` files."""
