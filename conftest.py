"""Root conftest: what every test run of this repository needs beyond the installed plugin."""

pytest_plugins = ["pytester"]
