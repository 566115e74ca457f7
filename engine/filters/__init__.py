"""The filter language: Mongo-style JSON conditions over profile fields (docs/filters.md).

>>> from segmint.engine import compile_filter
>>> f = compile_filter('{"$and": [{"orders.count": {"$gte": 2}}, {"spend.total": {"$gte": 100}}]}')
>>> f.matches({"orders": {"count": 3}, "spend": {"total": 250.0}})
True
>>> print(f.explain({"orders": {"count": 1}, "spend": {"total": 250.0}}))
✗ all of
  ✗ orders.count >= 2 (actual: 1)
  ✓ spend.total >= 100 (actual: 250.0)
"""

from ._explain import Explanation
from ._filter import Filter, FilterSet, OperatorFactory, compile_filter, compile_segments

__all__ = ["Filter", "FilterSet", "Explanation", "OperatorFactory", "compile_filter", "compile_segments"]
