"""Package data read at run time: JSON Schemas, virtual-package defaults, channel settings."""
