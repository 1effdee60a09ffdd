"""The raw layer: the embedded server, the raw schema, the CSV loader and sample data."""
