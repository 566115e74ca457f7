"""Operator names: what is built in, where each kind may go, and what is refused outright."""

from __future__ import annotations

__all__ = ["LOGICAL", "VALUE_OPERATORS", "NEVER_CODE", "UNSUPPORTED", "BUILTIN_OPERATORS"]

#: Operators that combine whole conditions (top level, or inside $and/$or/$nor/$elemMatch).
LOGICAL = ("$and", "$or", "$nor")
#: Operators applied to a field's value: {"field": {"$op": operand}}.
VALUE_OPERATORS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$not", "$all",
    "$size", "$elemMatch", "$regex", "$options", "$mod", "$type", "$between",
)
#: MongoDB operators that run code: segmint never evaluates code from config.
NEVER_CODE = ("$where", "$expr", "$function", "$accumulator", "$jsonSchema", "$text")
#: Other MongoDB query operators segmint does not implement (geo, bitwise, sampling).
UNSUPPORTED = (
    "$geoWithin", "$geoIntersects", "$near", "$nearSphere", "$box", "$center", "$centerSphere",
    "$polygon", "$geometry", "$maxDistance", "$minDistance", "$bitsAllSet", "$bitsAllClear",
    "$bitsAnySet", "$bitsAnyClear", "$sampleRate", "$rand", "$natural", "$search",
)
#: Names a plugin operator may not take.
BUILTIN_OPERATORS = frozenset((*LOGICAL, *VALUE_OPERATORS, "$segment", "$comment", *NEVER_CODE, *UNSUPPORTED))
