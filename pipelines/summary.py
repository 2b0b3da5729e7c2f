"""Every job's account of its records: read = kept + dropped + rejected, by reason."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field


class AccountingError(AssertionError):
    """read != kept + dropped + rejected: a job lost or invented records (a bug, never data)."""


@dataclass
class JobSummary:
    job: str
    source: str
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    tables: dict[str, int] = field(default_factory=dict)
    """table name → Delta version written (or found, for an already committed batch)."""
    already_committed: bool = False

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def check(self) -> JobSummary:
        if self.read != self.kept + self.n_dropped + self.n_rejected:
            raise AccountingError(f"{self.job}/{self.source}: read {self.read} != kept {self.kept} + "
                                  f"dropped {self.n_dropped} + rejected {self.n_rejected}")
        return self

    def count_verdicts(self, table) -> JobSummary:
        """Add a pyarrow table of (verdict, reason) rows: keep → kept, drop → dropped by reason,
        anything else (error) → rejected by reason."""
        for c in table.group_by(["verdict", "reason"]).aggregate([([], "count_all")]).to_pylist():
            self.read += c["count_all"]
            if c["verdict"] == "keep":
                self.kept += c["count_all"]
            elif c["verdict"] == "drop":
                self.dropped[c["reason"]] += c["count_all"]
            else:
                self.rejected[c["reason"]] += c["count_all"]
        return self

    def line(self) -> str:
        """The one summary line a job prints."""
        note = " (batch already committed: nothing written)" if self.already_committed else ""
        return (f"{self.job} {self.source}: read {self.read:,} = kept {self.kept:,} + dropped "
                f"{self.n_dropped:,} + rejected {self.n_rejected:,}{note}")

    def to_json(self) -> str:
        return json.dumps({"job": self.job, "source": self.source, "read": self.read, "kept": self.kept,
                           "dropped": dict(self.dropped), "rejected": dict(self.rejected),
                           "tables": self.tables})

    @classmethod
    def from_json(cls, text: str) -> JobSummary:
        d = json.loads(text)
        return cls(job=d["job"], source=d["source"], read=d["read"], kept=d["kept"],
                   dropped=Counter(d["dropped"]), rejected=Counter(d["rejected"]), tables=d["tables"])
