"""Models, engine and queries of the Ketamine Evidence database."""
