"""Gold tables: Tele-Data assembly (inclusion, dedup, ids, general replay) in the public layout."""
