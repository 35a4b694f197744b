"""Errors raised by the retrieval layer."""


class RetrievalError(Exception):
    """Base class for index and search problems; the message is shown to a maintainer."""


class IndexNotReadyError(RetrievalError):
    """No index has been built yet (run `vraagbaak corpus refresh`)."""


class ModelMismatchError(RetrievalError):
    """The index was built with another embedding model (run refresh with --rebuild)."""


class IndexUnavailableError(RetrievalError):
    """The shared store of the index (its database) cannot be reached; a worker keeps serving what it has."""


class IndexBusyError(RetrievalError):
    """Another refresh holds the index."""
