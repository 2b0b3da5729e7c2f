"""Release → tokenized, packed Arrow IPC shards for the trainer (encode, plan, stage)."""
