"""A ticket's states (apart from the store, so the command line lists them without loading SQLAlchemy)."""

OPEN, SENT, ANSWERED, CLOSED, REOPENED = "open", "sent", "answered", "closed", "reopened"
STATES = (OPEN, SENT, ANSWERED, CLOSED, REOPENED)
