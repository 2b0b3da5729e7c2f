"""telelake pipelines: reusable stages (lake I/O, ingest, filters) that jobs/ compose."""
