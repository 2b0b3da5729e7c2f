"""Table contracts: the Arrow schema, key, partitioning and description of every lake table."""
from schemas.benchmarks import BENCHMARKS
from schemas.contract import SchemaMismatchError, TableContract, check_compatible
from schemas.documents import CATEGORIES, DOCUMENT_SCHEMA, bronze_contract
from schemas.gold import DEDUP, GENERAL_REPLAY, TELE_DATA, TELE_DATA_IDS
from schemas.instructions import INSTRUCTIONS
from schemas.keyword_hits import KEYWORD_HITS
from schemas.llm import CASCADE, LLM_RESULTS, RELEVANCE
from schemas.qna import QNA_CHUNKS, QNA_PAIRS, QNA_VERDICTS, TELE_EVAL
from schemas.rejected import REJECTED
from schemas.sources import CLEANED, SOURCES_SUFFIX, sources_contract, sources_table

_FIXED = {c.name: c for c in (BENCHMARKS, CASCADE, CLEANED, DEDUP, GENERAL_REPLAY, INSTRUCTIONS, KEYWORD_HITS, LLM_RESULTS, QNA_CHUNKS, QNA_PAIRS,
                               QNA_VERDICTS, RELEVANCE, REJECTED, TELE_DATA, TELE_DATA_IDS, TELE_EVAL)}


def contract_for(name: str) -> TableContract:
    """Contract of table `zone.table`; bronze tables are one per source and share a schema."""
    if name in _FIXED:
        return _FIXED[name]
    zone, _, table = name.partition(".")
    if zone == "bronze" and table.endswith(SOURCES_SUFFIX) and len(table) > len(SOURCES_SUFFIX):
        return sources_contract(table[: -len(SOURCES_SUFFIX)])
    if zone == "bronze" and table:
        return bronze_contract(table)
    raise KeyError(f"no contract for table {name!r}; known: {sorted(_FIXED)}, bronze.<source> and "
                   f"bronze.<source>{SOURCES_SUFFIX}")


__all__ = ["BENCHMARKS", "CASCADE", "CATEGORIES", "CLEANED", "DEDUP", "GENERAL_REPLAY", "INSTRUCTIONS", "TELE_DATA", "TELE_DATA_IDS", "TELE_EVAL", "SOURCES_SUFFIX", "DOCUMENT_SCHEMA", "KEYWORD_HITS", "LLM_RESULTS", "QNA_CHUNKS", "QNA_PAIRS", "QNA_VERDICTS", "REJECTED", "RELEVANCE", "SchemaMismatchError",
           "TableContract", "bronze_contract", "check_compatible", "contract_for", "sources_contract", "sources_table"]
