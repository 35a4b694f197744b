"""Errors raised while reading and indexing sources."""


class CorpusError(Exception):
    """Base class for corpus problems; the message is shown to a maintainer."""


class SourceReadError(CorpusError):
    """A source could not be read or parsed (corrupt, empty, undecodable, HTTP error)."""


class ManifestError(CorpusError):
    """The sources manifest is missing, malformed or names an unknown field."""
