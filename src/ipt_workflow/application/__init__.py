"""The application layer: the case application (the service layer) and auditing."""
