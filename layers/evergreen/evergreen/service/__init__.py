"""Use cases: ingest an event, sweep what is due, sync changes. They talk to ports, not to AWS."""
