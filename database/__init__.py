"""SQLAlchemy 2.0 models and engines for Dalal's four databases: main, sandbox, latency, logs."""
