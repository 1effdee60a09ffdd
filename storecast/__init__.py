"""storecast: SQL-first retail predictions that live in Postgres."""

__version__ = "0.1.0"
