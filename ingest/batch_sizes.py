"""Default batch sizes of the harvester and the importer, in a module that imports nothing.

The command line shows them in its help without loading the database layer.
"""

DEFAULT_BATCH_SIZE = 500  # records per efetch request and per commit of a harvest
DEFAULT_IMPORT_BATCH = 500  # records per commit; 1,000 held peak memory above 200 MB with workers
