"""Farm-to-export traceability for Thai community agriculture."""

__version__ = "0.1.0"
