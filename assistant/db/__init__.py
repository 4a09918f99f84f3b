"""The interaction database: models, engine and migrations."""
