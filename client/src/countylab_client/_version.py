"""Single source of the SDK version, sent in the User-Agent so server logs show which client spoke."""

__version__ = "0.1.0"
