"""The document axis inside the hub: intake, transfers and the operators' API."""
