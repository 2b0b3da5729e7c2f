"""Raw source files (arXiv LaTeX, 3GPP Word): ingest to bronze and clean to silver.cleaned."""
