"""The knowledge base: articles, their BM25 index, search and answer composition."""
