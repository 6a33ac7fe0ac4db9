"""pairstats ingestion: read, normalise, validate and load district submissions."""

__version__ = "0.1.0"
