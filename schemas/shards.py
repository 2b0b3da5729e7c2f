"""Training shards: the contract of the Arrow IPC files `telelake shards build` writes.

A shard set is a folder `<lake>/_telelake/shards/<release>/<key>/` holding `manifest.json` and, per
split, files `train/shard-00000.arrow`, `val/shard-00000.arrow`, … Every row of a shard is one packed
sequence of exactly `seq_len` tokens; `segments` cuts it into the pieces of the documents it holds
(in order; the last piece may be padding), so a reader rebuilds position ids that restart at every
document and labels that never cross a boundary. Sequences are numbered globally per split: shard k
holds sequences [first_seq, first_seq + rows).
"""
from __future__ import annotations

import pyarrow as pa

FORMAT = "telelake-shards/1"
MANIFEST = "manifest.json"
PAD_DOC = ""
"""doc_ids entry of the padding piece (the loss skips it)."""


def shard_schema(seq_len: int, *, loss_mask: bool) -> pa.Schema:
    """Arrow schema of a shard file. `loss_mask` (instruction tuning): 1 where the token is a target
    (the assistant's answer), 0 where it is prompt; continual pretraining trains on every token."""
    fields = [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("input_ids", pa.list_(pa.int32(), seq_len), nullable=False),
        pa.field("segments", pa.list_(pa.int32()), nullable=False),
        pa.field("doc_ids", pa.list_(pa.string()), nullable=False),
    ]
    if loss_mask:
        fields.append(pa.field("loss_mask", pa.list_(pa.uint8(), seq_len), nullable=False))
    return pa.schema(fields, metadata={"format": FORMAT, "seq_len": str(seq_len)})


COLUMN_DOCS = {
    "seq": "global sequence number within the split (0-based, dense)",
    "input_ids": "exactly seq_len token ids: the documents' pieces back to back, padding at the end",
    "segments": "lengths of the pieces in order; they sum to seq_len",
    "doc_ids": "'<table>:<doc id>#<copy>' of each piece ('' for padding): lineage and data order",
    "loss_mask": "instruction tuning only: 1 on answer tokens, 0 on prompt and padding",
}
