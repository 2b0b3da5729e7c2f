"""Small real benchmark rows for the evaluation stages."""
from __future__ import annotations

from pipelines.ingest.parse import utc_now
from schemas import BENCHMARKS
from tests.pipelines.gold.conftest import write_rows

QUESTIONS = [
    ("Which 5G core function handles registration and mobility?", ["AMF", "SMF", "UPF", "NRF"], 0),
    ("Which function allocates the UE IP address in 5G?", ["AMF", "SMF", "AUSF", "PCF"], 1),
    ("Which band does Bluetooth use?", ["2.4 GHz", "28 GHz", "700 MHz", "60 GHz"], 0),
    ("Which multiple access scheme does the LTE downlink use?", ["OFDMA", "CDMA", "TDMA", "FDMA"], 0),
    ("Which node routes user-plane traffic in the 5G core?", ["UDM", "UPF", "AMF", "NSSF"], 1),
    ("What does HARQ combine to improve decoding?", ["Retransmissions", "Cells", "Beams", "Slices"], 0),
]


def write_benchmarks(spark, cfg, per_split: int = 3, category: str = "teleqna") -> list[dict]:
    now = utc_now()
    rows = []
    for n, (q, choices, answer) in enumerate(QUESTIONS[: 2 * per_split]):
        rows.append({"item_id": f"{category}_{n:016x}", "category": category, "subject": None, "difficulty": None,
                     "question": q, "choices": choices, "answer": answer, "explanation": None,
                     "split": "train" if n < per_split else "test", "question_key": f"{n:016x}",
                     "source": "test@1", "source_file": "t.json", "source_location": f"key={n}", "repairs": [],
                     "import_batch": "b", "imported_at": now})
    write_rows(spark, cfg, BENCHMARKS, rows, f"bench-{category}")
    return rows
