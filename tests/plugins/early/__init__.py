"""A plug-in package whose migration is numbered where the built-in connectors' are: refused
(tests/integration/test_plugin_connector.py)."""
