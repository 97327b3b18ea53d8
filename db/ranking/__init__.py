"""Ranked review queues: the corpus's features, claim search terms, the learning model, embeddings."""
