"""Large numpy arrays reach workers as memory maps of a file written once per call.

Pickling a 400 MB array into every task costs three copies per task (pickle, socket,
unpickle) and one resident copy per worker. Instead, while a task is pickled, each array of
at least ``threshold`` bytes is replaced by an :class:`ArrayFile` — a path, a dtype and a
layout — and the worker opens it as a read-only ``numpy.memmap`` (``mmap_mode``):

    caller's array ──(written once per call, space reserved)──> <temp folder>/array-1.bin
    task pickle:  ArrayFile(paths, dtype, shape, ...)  ──> worker: numpy.memmap(path, ...)

* A large array (64 MB or more, on a machine with several cores) is written as several
  files by several threads, and each worker maps them back side by side as one array (see
  :mod:`.stripes`): one tmpfs file is filled by one thread at a time.

* The same array (the same object) passed to many tasks is written once; :class:`ArrayFiles`
  remembers it by identity with a weak reference, so a freed array's id is never mistaken
  for a new one.
* An array that already lives in a file (a ``numpy.memmap``, or what ``forklift.load(...,
  mmap_mode="r")`` returns, or any view of one) is passed by reference to that file, never
  rewritten.
* Adoption: after a large array is written, the caller's own copy of it gives its pages
  back: its memory is re-mapped onto the file just written (see :mod:`.page_adoption`), so
  the caller and the workers share one copy instead of holding two.

What is not shared: arrays of Python objects (they hold pointers), numpy subclasses other
than ``memmap`` (their extra state pickles as usual) and arrays under ``threshold``.

Imports only the standard library, numpy (lazily: only when arrays are present) and this
package's temp-space, stripe and adoption helpers.
"""

from __future__ import annotations

import dataclasses
import io
import mmap
import os
import sys
import threading
import weakref
from typing import Any

import cloudpickle

from forklift.pool.page_adoption import can_adopt
from forklift.pool.stripes import map_stripes, stripe_sizes, write_at, write_stripes
from forklift.pool.temp_space import NO_ROOM_ERRNOS, CallFolders, no_room

__all__ = [
    "WORKER_MODES",
    "ArrayFile",
    "ArrayFiles",
    "dumps_with_arrays",
    "is_numpy_array",
    "write_at",
]

# mmap_mode in the caller -> how workers open the file. "w+" would truncate the file.
WORKER_MODES = {"r": "r", "c": "c", "r+": "r+", "w+": "r+"}


def is_numpy_array(kind: type) -> bool:
    """``kind`` is ``numpy.ndarray`` or ``numpy.memmap`` (not another subclass)."""
    return kind.__module__ == "numpy" and kind.__name__ in ("ndarray", "memmap")


@dataclasses.dataclass(frozen=True)
class ArrayFile:
    """Where an array's bytes are in a file, and how to view them; unpickles as a memmap.

    ``paths`` holds one file, or the stripes of one logical file (see :mod:`.stripes`): each
    ``stripe_bytes`` long but the last, ``size`` bytes in all.
    """

    paths: tuple[str, ...]
    dtype: Any
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None  # None: contiguous in ``order``
    order: str
    offset: int  # of the first element, in bytes from the (logical) file's start
    mode: str
    stripe_bytes: int = 0
    size: int = 0

    @property
    def path(self) -> str:
        """The (first) file: what the worker's ``numpy.memmap`` calls its ``filename``."""
        return self.paths[0]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return open_array_file, dataclasses.astuple(self)

    def open(self) -> Any:
        return open_array_file(*dataclasses.astuple(self))


# The attribute of a worker's striped memmap that lets it be passed on by reference.
_STRIPES = "forklift_stripes"


def open_array_file(
    paths: tuple[str, ...],
    dtype: Any,
    shape: tuple[int, ...],
    strides: tuple[int, ...] | None,
    order: str,
    offset: int,
    mode: str,
    stripe_bytes: int = 0,
    size: int = 0,
) -> Any:
    """Map an array described by an :class:`ArrayFile` (runs in the worker)."""
    import numpy as np

    if len(paths) > 1:
        region = map_stripes(paths, stripe_bytes, size, mode)
        # As numpy.memmap itself builds one, over our region: a real memmap that owns its map.
        new: Any = np.ndarray.__new__  # its stubs want a literal order; ours is "C" or "F"
        array = new(
            np.memmap,
            shape,
            dtype=dtype,
            buffer=region,
            offset=offset,
            strides=strides,
            order=order,
        )
        array._mmap, array.filename, array.offset, array.mode = region, paths[0], offset, mode
        setattr(array, _STRIPES, (paths, stripe_bytes, size))
        return array
    (path,) = paths
    memmap: Any = np.memmap  # its stubs want literal modes; ours are checked on the way in
    if strides is None:
        return memmap(path, dtype=dtype, mode=mode, offset=offset, shape=shape, order=order)
    itemsize = np.dtype(dtype).itemsize
    low = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides, strict=True))
    high = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides, strict=True)) + itemsize
    span = memmap(path, dtype=np.uint8, mode=mode, offset=offset + low, shape=(high - low,))
    view = np.ndarray(shape, dtype=dtype, buffer=span, offset=-low, strides=strides)
    return view.view(np.memmap)


class ArrayFiles:
    """The arrays of one call written to (or found in) files; :meth:`close` removes them.

    ``threshold``: arrays of fewer bytes are pickled as usual. ``mmap_mode``: how workers
    open the files (``"r"``, ``"r+"``, ``"w+"`` or ``"c"``, as in joblib). ``adopt``: let the
    caller's arrays give up their pages to the files (Linux; see :mod:`.page_adoption`).
    """

    def __init__(
        self,
        *,
        threshold: int,
        mmap_mode: str = "r",
        temp_folder: str | None = None,
        adopt: bool = True,
    ) -> None:
        if mmap_mode not in WORKER_MODES:
            raise ValueError(f"mmap_mode must be one of {sorted(WORKER_MODES)}, got {mmap_mode!r}")
        self.threshold = threshold
        self.mode = WORKER_MODES[mmap_mode]
        # Adoption shares pages between the caller and the file: only safe when workers
        # cannot write into the file ("r+" writes would show through in the caller).
        self.adopt = adopt and self.mode in ("r", "c")
        self.folders = CallFolders(temp_folder)
        self._known: dict[int, tuple[weakref.ref[Any], ArrayFile]] = {}
        self._lock = threading.Lock()
        self.n_written = 0
        self.n_adopted = 0

    def reference(self, array: Any) -> ArrayFile | None:
        """The file standing for ``array`` (written on first use), or None to pickle it."""
        if array.dtype.hasobject or (array.nbytes < self.threshold and not _in_file(array)):
            return None
        key = id(array)
        with self._lock:
            known = self._known.get(key)
            if known is not None and known[0]() is array:
                return known[1]
            found = _backing_file(array, self.mode)
            reference = found if found is not None else self._write(array)
            self._known[key] = (weakref.ref(array, self._forgetter(key)), reference)
            return reference

    def _forgetter(self, key: int) -> Any:
        def forget(_: object) -> None:
            self._known.pop(key, None)

        return forget

    def _write(self, array: Any) -> ArrayFile:
        import numpy as np

        if array.flags.c_contiguous:
            order = "C"
        elif array.flags.f_contiguous:
            order = "F"
        else:
            array, order = np.ascontiguousarray(array), "C"
        address = array.__array_interface__["data"][0]
        adopt = self.adopt and can_adopt(array)
        # For adoption the file's pages must line up with the array's pages in memory.
        head = address % mmap.PAGESIZE if adopt else 0
        size = head + array.nbytes
        sizes = stripe_sizes(size)
        files = self.folders.create_files(sizes)
        paths = tuple(path for _, path in files)
        try:
            raw = memoryview(array.ravel(order="K").view(np.uint8))
            fds = [fd for fd, _ in files]
            all_adopted = write_stripes(raw, head, fds, sizes, address if adopt else None)
            if adopt and all_adopted:
                self.n_adopted += 1
        except OSError as error:
            for path in paths:
                os.unlink(path)
            if error.errno in NO_ROOM_ERRNOS:
                raise no_room(size, os.path.dirname(paths[0]), error) from error
            raise
        finally:
            for fd, _ in files:
                os.close(fd)
        self.n_written += 1
        striped = len(paths) > 1
        return ArrayFile(
            paths,
            array.dtype,
            array.shape,
            None,
            order,
            head,
            self.mode,
            sizes[0] if striped else 0,
            size if striped else 0,
        )

    def close(self) -> None:
        """Remove the files written for this call (workers keep what they mapped)."""
        with self._lock:
            self._known.clear()
        self.folders.close()


def _root_memmap(array: Any) -> Any:
    """The ``numpy.memmap`` that owns the mapping ``array`` views, or None."""
    memmap_type = sys.modules["numpy"].memmap
    base = array
    while base is not None:
        if (
            isinstance(base, memmap_type)
            and isinstance(base.base, mmap.mmap)
            and getattr(base, "filename", None)
        ):
            return base
        base = getattr(base, "base", None)
    return None


def _in_file(array: Any) -> bool:
    return _root_memmap(array) is not None


def _backing_file(array: Any, worker_mode: str) -> ArrayFile | None:
    root = _root_memmap(array)
    # A copy-on-write map ("c") may differ from its file; its pages are the truth.
    if root is None or root.mode == "c":
        return None
    paths, stripe_bytes, size = getattr(root, _STRIPES, ((os.fspath(root.filename),), 0, 0))
    if not all(os.path.exists(path) for path in paths):
        return None
    delta = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    offset = root.offset + delta
    if array.flags.c_contiguous:
        strides, order = None, "C"
    elif array.flags.f_contiguous:
        strides, order = None, "F"
    else:
        strides, order = tuple(array.strides), "C"
    # "r+" would let workers write to the user's own file: allowed only if the user opened
    # it for writing; otherwise workers get read-only maps.
    if worker_mode == "r+" and root.mode not in ("r+", "w+"):
        worker_mode = "r"
    return ArrayFile(
        paths,
        array.dtype,
        tuple(array.shape),
        strides,
        order,
        offset,
        worker_mode,
        stripe_bytes,
        size,
    )


class _ArrayPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, arrays: ArrayFiles) -> None:
        super().__init__(file, protocol=5)
        self.arrays = arrays

    def reducer_override(self, obj: Any) -> Any:
        if is_numpy_array(type(obj)):
            reference = self.arrays.reference(obj)
            if reference is not None:
                return reference.__reduce__()
        return super().reducer_override(obj)


def dumps_with_arrays(obj: Any, arrays: ArrayFiles) -> bytes:
    """cloudpickle ``obj`` with its large arrays replaced by :class:`ArrayFile` references
    (for pools that pickle tasks themselves, such as ``multiprocessing.Pool``)."""
    with io.BytesIO() as file:
        _ArrayPickler(file, arrays).dump(obj)
        return file.getvalue()
