"""The document interchange axis (VDXP): edXML documents and status messages."""
