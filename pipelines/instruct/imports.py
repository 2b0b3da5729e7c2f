"""Read Alpaca- and Open-Instruct-style files into instruction records. Pure apart from reading.

- `alpaca`: a JSON array or JSON lines of {instruction, input, output} (Stanford Alpaca, and the
  many sets in its layout).
- `open_instruct`: JSON lines of {instruction | prompt, response | output | completion} (VMware's
  open-instruct), or of {messages: [{role, content}, …]} (AllenAI's open-instruct / Tulu); a
  system message goes before the instruction; one user turn and one assistant turn are expected.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import orjson

from pipelines.ingest.readers.common import open_binary
from pipelines.ingest.records import Reject

Format = Literal["alpaca", "open_instruct"]
MAX_RAW = 64 << 10


def read_records(fmt: Format, path: str, storage_options: dict[str, str]) -> Iterator[tuple[dict, str, bytes] | Reject]:
    """(record {instruction, input, output}, location, raw) or a Reject per record of the file."""
    with open_binary(path, storage_options) as fh:
        data = fh.read()
    if path.endswith(".gz"):
        import gzip

        data = gzip.decompress(data)
    units: list[tuple[object, str, bytes]] = []
    if data.lstrip().startswith(b"["):
        try:
            units = [(o, f"index={i}", orjson.dumps(o)) for i, o in enumerate(orjson.loads(data))]
        except orjson.JSONDecodeError as exc:
            yield Reject("malformed_json", f"the file is not a JSON array: {exc}", "file", -1, data[:MAX_RAW], len(data))
            return
    else:
        for n, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                units.append((orjson.loads(line), f"line={n}", line))
            except orjson.JSONDecodeError as exc:
                yield Reject("malformed_json", str(exc), f"line={n}", n, line[:MAX_RAW], len(line))
    for n, (obj, location, raw) in enumerate(units):
        out = to_record(fmt, obj)
        if isinstance(out, str):
            yield Reject(out.split(":")[0], out, location, n, raw[:MAX_RAW], len(raw))
        else:
            yield out, location, raw


def to_record(fmt: Format, obj) -> dict | str:
    """{instruction, input, output}, or 'reason: detail'."""
    if not isinstance(obj, dict):
        return f"wrong_shape: expected an object, got {type(obj).__name__}"
    if fmt == "open_instruct" and "messages" in obj:
        return _messages(obj["messages"])
    instruction = obj.get("instruction", obj.get("prompt") if fmt == "open_instruct" else None)
    output = obj.get("output", obj.get("response", obj.get("completion")) if fmt == "open_instruct" else None)
    inp = obj.get("input", "")
    for name, value in (("instruction", instruction), ("output", output), ("input", inp)):
        if value is None and name != "input":
            return f"missing_field: {name} is missing"
        if value is not None and not isinstance(value, str):
            return f"wrong_type: {name} is {type(value).__name__}, expected a string"
    if not instruction.strip():
        return "empty_instruction: the instruction is empty"
    if not output.strip():
        return "empty_output: the output is empty"
    return {"instruction": instruction.strip(), "input": (inp or "").strip(), "output": output.strip()}


def _messages(messages) -> dict | str:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return "wrong_shape: messages must be a list of {role, content}"
    system = [m.get("content") for m in messages if m.get("role") == "system"]
    users = [m.get("content") for m in messages if m.get("role") == "user"]
    bots = [m.get("content") for m in messages if m.get("role") == "assistant"]
    if len(users) != 1 or len(bots) != 1:
        return (f"multi_turn: {len(users)} user and {len(bots)} assistant turns; one of each is expected (the "
                f"instruction schema is single-turn)")
    if not all(isinstance(x, str) for x in system + users + bots):
        return "wrong_type: message contents must be strings"
    if not bots[0].strip() or not users[0].strip():
        return "empty_output: a turn is empty"
    instruction = "\n\n".join([*(s.strip() for s in system if s.strip()), users[0].strip()])
    return {"instruction": instruction, "input": "", "output": bots[0].strip()}
