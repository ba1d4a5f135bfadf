"""The signed, hash-chained ledger: publisher keys, entries, the file layout, the checkpoint, the chain."""
