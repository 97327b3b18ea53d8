"""Read models of the dashboard's pages: frozen dataclasses built from the database, and their caches."""
