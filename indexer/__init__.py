"""Moment indexer: curated content into versioned, searchable indexes."""
