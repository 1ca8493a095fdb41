"""``wrap_non_picklable_objects``: send interactively defined objects through cloudpickle.

Process backends already send lambdas and ``__main__`` functions by value. This wrapper is
for the remaining cases joblib users reach for it: objects that plain ``pickle`` must carry
(e.g. inside a result, or to a backend that uses plain pickle) and that are defined in a
notebook or a script.
"""

from __future__ import annotations

from typing import Any, TypeVar

import cloudpickle

__all__ = ["CloudpickledObject", "wrap_non_picklable_objects"]

T = TypeVar("T")


class CloudpickledObject:
    """Wraps ``obj`` so that pickling it uses cloudpickle; calls and attributes pass through."""

    def __init__(self, obj: Any, keep_wrapper: bool = True) -> None:
        self._obj = obj
        self._keep_wrapper = keep_wrapper

    def __reduce__(self) -> tuple[Any, ...]:
        payload = cloudpickle.dumps(self._obj)
        if self._keep_wrapper:
            return (_unwrap_into_wrapper, (payload,))
        return (cloudpickle.loads, (payload,))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._obj(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)

    def __repr__(self) -> str:
        return f"CloudpickledObject({self._obj!r})"


def _unwrap_into_wrapper(payload: bytes) -> CloudpickledObject:
    return CloudpickledObject(cloudpickle.loads(payload), keep_wrapper=True)


def wrap_non_picklable_objects(obj: T, keep_wrapper: bool = True) -> T:
    """Make ``obj`` picklable through cloudpickle (usable as a decorator).

    With ``keep_wrapper=False`` the object arrives unwrapped on the other side.

    Examples:
        >>> import pickle
        >>> from forklift import wrap_non_picklable_objects
        >>> square = wrap_non_picklable_objects(lambda x: x * x)
        >>> pickle.loads(pickle.dumps(square))(4)
        16
    """
    return CloudpickledObject(obj, keep_wrapper)  # type: ignore[return-value]
