"""Records for pandas objects: DataFrame, Series and Index, from their values, not pickle.

pandas is never imported here: the caller passes the module it found in :data:`sys.modules`.

``X`` record: text kind (``frame``, ``series``, ``index``, ``multiindex``), text class, rec
``attrs`` (or None), rec subclass ``_metadata`` attributes (or None), then

- index: rec name, then values;
- multiindex: rec names, u64 level count, per level (rec level index, rec codes array);
- series: rec name, rec index, then values;
- frame: rec columns index, rec index, u64 column count, values per column in column order.

"Values" is rec dtype name (``str(dtype)``: includes a timezone or categorical marker) then:
for a categorical, rec categories index, rec codes array, rec ordered flag; otherwise rec
``numpy.asarray(values)`` (an array record; object values element by element).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from forklift.hashing.encoder import Encoder, pack_u64
from forklift.hashing.names import class_name

__all__ = ["encode_pandas"]

# pandas' own ``_metadata`` entries, already hashed as the name.
_BUILTIN_METADATA = frozenset({"_name", "name"})


def encode_pandas(enc: Encoder, obj: Any, pd: ModuleType) -> bool:
    """Append the record of ``obj`` if it is a pandas container; return whether it was one."""
    if isinstance(obj, pd.DataFrame):
        _header(enc, "frame", obj)
        enc.encode(obj.columns)
        enc.encode(obj.index)
        enc.out += pack_u64(obj.shape[1])
        for position in range(obj.shape[1]):
            _values(enc, obj.iloc[:, position].array, pd)
    elif isinstance(obj, pd.Series):
        _header(enc, "series", obj)
        enc.encode(obj.name)
        enc.encode(obj.index)
        _values(enc, obj.array, pd)
    elif isinstance(obj, pd.MultiIndex):
        _header(enc, "multiindex", obj)
        enc.encode(list(obj.names))
        enc.out += pack_u64(obj.nlevels)
        for level, codes in zip(obj.levels, obj.codes, strict=True):
            enc.encode(level)
            enc.encode(codes)
    elif isinstance(obj, pd.Index):
        _header(enc, "index", obj)
        enc.encode(obj.name)
        _values(enc, obj.array, pd)
    else:
        return False
    return True


def _header(enc: Encoder, kind: str, obj: Any) -> None:
    enc.out += b"X"
    enc.write_text(kind)
    enc.write_text(class_name(type(obj)))
    # User metadata: ``attrs``, and the attributes a subclass declares in ``_metadata``
    # (a GeoDataFrame's crs); None where there is none.
    attrs = getattr(obj, "attrs", None)
    enc.encode(dict(attrs) if attrs else None)
    names = [n for n in getattr(obj, "_metadata", ()) if n not in _BUILTIN_METADATA]
    enc.encode({name: getattr(obj, name, None) for name in names} if names else None)


def _values(enc: Encoder, values: Any, pd: ModuleType) -> None:
    import numpy as np  # pandas is loaded, so numpy is too

    enc.write_text(str(values.dtype))
    if isinstance(values, pd.Categorical):
        enc.encode(values.categories)
        enc.encode(values.codes)
        enc.encode(bool(values.ordered))
    else:
        enc.encode(np.asarray(values))
