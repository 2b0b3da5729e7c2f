"""The embedded demo: a small written-for-telelake corpus and the flow over it."""
