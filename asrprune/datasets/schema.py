"""The Arrow schema of every dataset Parquet file (docs/contracts.md, "Data") and its validator."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

AUDIO_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("audio", pa.binary(), nullable=False),  # 16 kHz mono PCM_16 FLAC bytes
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # reference transcript
        pa.field("source", pa.string(), nullable=False),  # e.g. asterisk:en_US_f_Allison, tts:flite:rms
        pa.field("sentence_id", pa.string(), nullable=False),  # shared by readings of one sentence
    ]
)


def make_table(rows: list[dict]) -> pa.Table:
    """Build an AUDIO_SCHEMA table from row dicts, sorted by id."""
    rows = sorted(rows, key=lambda r: r["id"])
    cols = {f.name: [r[f.name] for r in rows] for f in AUDIO_SCHEMA}
    return pa.Table.from_pydict(cols, schema=AUDIO_SCHEMA)


def validate_table(table: pa.Table, name: str) -> None:
    """Raise ValueError unless `table` follows the data contract (schema, ids, texts, order)."""
    if not table.schema.equals(AUDIO_SCHEMA, check_metadata=False):
        raise ValueError(f"dataset {name}: schema is\n{table.schema}\nexpected\n{AUDIO_SCHEMA}")
    if table.num_rows == 0:
        raise ValueError(f"dataset {name}: has no rows; expected at least one utterance")
    for col in AUDIO_SCHEMA.names:
        if table.column(col).null_count:
            raise ValueError(f"dataset {name}: column {col!r} has nulls; expected none")
    try:  # Arrow strings built from buffers are not checked for UTF-8 until asked
        table.column("text").validate(full=True)
        table.column("id").validate(full=True)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"dataset {name}: invalid string data ({exc}); expected UTF-8") from exc
    ids = table.column("id").to_pylist()
    empty = [i for i in ids if not i.strip()]
    if empty:
        raise ValueError(f"dataset {name}: {len(empty)} empty id(s); expected non-empty ids")
    dups = sorted(k for k, c in Counter(ids).items() if c > 1)
    if dups:
        raise ValueError(f"dataset {name}: duplicate ids {dups[:5]}; expected unique ids")
    if ids != sorted(ids):
        raise ValueError(f"dataset {name}: rows are not sorted by id")
    texts = table.column("text").to_pylist()
    blank = [i for i, t in zip(ids, texts) if not t.strip()]
    if blank:
        raise ValueError(f"dataset {name}: empty transcript for ids {blank[:5]}; expected text")
    for col in ("source", "sentence_id"):
        if pc.any(pc.equal(pc.utf8_length(table.column(col)), 0)).as_py():
            raise ValueError(f"dataset {name}: empty {col!r} values; expected non-empty strings")
    if pc.any(pc.less_equal(table.column("duration_s"), 0.0)).as_py():
        raise ValueError(f"dataset {name}: non-positive duration_s; expected > 0")
