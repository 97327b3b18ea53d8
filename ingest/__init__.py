"""PubMed harvesting (E-utilities), file import and export for Ketamine Evidence."""
