"""Read a full-object torch checkpoint (a pickled ``nn.Module``) without running any of its code.

YOLOv5 and Ultralytics release their detectors as pickled model objects (``{"model": <DetectionModel>, ...}``):
``torch.load(weights_only=True)`` refuses them and a plain ``torch.load`` imports their classes and lets the pickle
call any function it names (a checkpoint is untrusted input). Here the pickle is read by a restricted unpickler
(pure-Python ``pickle._Unpickler`` with the code-running opcodes replaced), passed to ``torch.load`` as its
``pickle_module`` so that torch's own zip and legacy readers supply the tensor storages:

* tensors, parameters and storages are rebuilt by torch's rebuild helpers (wrapped, with their arguments checked);
* plain containers and values (dict, list, tuple, set, OrderedDict, numbers, str, bytes, torch dtypes / Size /
  device, numpy arrays and scalars) are rebuilt as usual;
* every other class reference (``models.yolo.Model``, ``models.common.Conv``, ``torch.nn.modules.conv.Conv2d``,
  ``ultralytics.nn.tasks.DetectionModel``, ...) becomes an :class:`InertObject`: a record that keeps the class's
  module and name and the state the pickle gives it (its ``__dict__``), and nothing is imported;
* a call of anything that is not on the allow-list (``REDUCE`` of ``os.system``, ``builtins.exec``, a class with
  arguments, ...) is refused with :class:`RefusedCallError` (a :class:`~bench.errors.BadInputError`) naming the
  callable; :func:`load_checkpoint` adds the file's name. Nothing is ever executed.

:func:`module_state_dict` walks an inert ``nn.Module`` record (``_parameters``, ``_buffers``, ``_modules``) into the
flat state dict ``Module.state_dict()`` would give; :func:`inert_attr` reads plain attributes (``yaml``, ``names``,
``stride``). TorchScript archives (which run code when loaded) are refused.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import sys
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from bench.errors import BadInputError

__all__ = ["InertObject", "RefusedCallError", "Unpickler", "inert_attr", "inert_attrs", "inert_ref", "is_inert",
           "load", "load_checkpoint", "loads", "module_state_dict", "require_plain", "to_float32"]


class RefusedCallError(BadInputError):
    """The pickle asks to call something that is not on the allow-list; nothing was called."""


def _refuse(what: str, detail: str = "") -> RefusedCallError:
    extra = f" ({detail})" if detail else ""
    return RefusedCallError(f"the pickle asks to call {what}{extra}, which is not on the allow-list of tensor and "
                            f"container rebuilders; refused, nothing was executed")


# inert records ---------------------------------------------------------------------------------------------------
class _InertMeta(type):
    """Metaclass of the stand-in classes: calling one (``REDUCE``, ``INST`` with arguments) is refused."""

    inert_module: str
    inert_name: str

    def __call__(cls, *args, **kwargs):
        raise _refuse(f"{cls.inert_module}.{cls.inert_name}", "a call of a class this reader never imports")

    def __repr__(cls) -> str:
        return f"<inert class {cls.inert_module}.{cls.inert_name}>"


class InertObject(metaclass=_InertMeta):
    """An object the pickle describes, of a class that was never imported.

    ``inert_ref(obj)`` gives ``module.name`` of its class; ``inert_attrs(obj)`` the attributes (state) the pickle
    set; attribute access falls back to that state (``record.yaml``, ``record.names``).
    """

    inert_module: ClassVar[str] = ""
    inert_name: ClassVar[str] = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        obj = object.__new__(cls)
        obj.__dict__["_inert_args"] = args
        obj.__dict__["_inert_kwargs"] = kwargs
        obj.__dict__["_inert_state"] = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        slots = None
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state, slots = state
        merged = self.__dict__["_inert_state"]
        if isinstance(state, dict):
            merged.update(state)
        elif state is not None:
            merged["__state__"] = state
        if isinstance(slots, dict):
            merged.update(slots)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self.__dict__["_inert_state"][name]
        except KeyError:
            raise AttributeError(f"inert {inert_ref(self)} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"inert {inert_ref(self)} is read-only")

    def __repr__(self) -> str:
        return f"<inert {inert_ref(self)}>"


class InertAttribute:
    """``getattr(<inert>, name)`` as pickled by some checkpoints (e.g. a bound ``forward``): a name, nothing more."""

    def __init__(self, owner: Any, name: str) -> None:
        self.owner, self.name = owner, name

    def __repr__(self) -> str:
        return f"<inert attribute {self.name} of {self.owner!r}>"


_INERT_CLASSES: dict[tuple[str, str], type] = {}


def _inert_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _INERT_CLASSES:  # building a class from two strings runs no code of the checkpoint
        _INERT_CLASSES[key] = _InertMeta(name.rpartition(".")[2] or "Inert", (InertObject,),
                                         {"inert_module": module, "inert_name": name, "__module__": __name__})
    return _INERT_CLASSES[key]


def is_inert(obj: Any) -> bool:
    return isinstance(obj, InertObject)


def inert_ref(obj: Any) -> str:
    """``module.name`` of an inert record's class (``models.yolo.Model``); the Python type's name otherwise."""
    cls = type(obj)
    if isinstance(obj, InertObject):
        return f"{cls.inert_module}.{cls.inert_name}"
    return f"{cls.__module__}.{cls.__qualname__}"


def inert_attrs(obj: InertObject) -> dict[str, Any]:
    """The attributes the pickle gave an inert record (its ``__dict__`` as saved)."""
    return obj.__dict__["_inert_state"]


def inert_attr(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute ``name`` of an inert record (or of a plain dict / object), ``default`` when absent."""
    if isinstance(obj, InertObject):
        return inert_attrs(obj).get(name, default)
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


# the allow-list ----------------------------------------------------------------------------------------------------
def _check_storage(storage: Any, helper: str) -> None:
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise _refuse(helper, f"its first argument is a {type(storage).__name__}, not a tensor storage")


def _check_hooks(hooks: Any, helper: str) -> None:
    if hooks:  # a tensor's backward hooks would be code; checkpoints store an empty OrderedDict
        raise _refuse(helper, "with backward hooks")


def _rebuild_tensor(storage, storage_offset, size, stride):
    _check_storage(storage, "torch._utils._rebuild_tensor")
    return torch._utils._rebuild_tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    _check_storage(storage, "torch._utils._rebuild_tensor_v2")
    _check_hooks(backward_hooks, "torch._utils._rebuild_tensor_v2")
    tensor = torch._utils._rebuild_tensor(storage, int(storage_offset), tuple(size), tuple(stride))
    tensor.requires_grad = bool(requires_grad)
    return tensor


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, torch.Tensor):
        raise _refuse("torch._utils._rebuild_parameter", f"its data is a {type(data).__name__}, not a tensor")
    _check_hooks(backward_hooks, "torch._utils._rebuild_parameter")
    return torch.nn.Parameter(data, bool(requires_grad))  # a Parameter subclass's extra state is dropped


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_parameter):
        raise _refuse("torch._tensor._rebuild_from_type_v2", f"with the rebuilder {func!r}")
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise _refuse("torch._tensor._rebuild_from_type_v2", f"for the tensor type {new_type!r}")
    result = func(*args)
    return torch.nn.Parameter(result, result.requires_grad) if new_type is torch.nn.Parameter else result


def _codecs_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "utf-8", "utf8",
                                                                                   "ascii"):
        raise _refuse("_codecs.encode", f"with {type(text).__name__} and encoding {encoding!r}")
    return text.encode(encoding)


def _numpy_reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise _refuse("numpy.core.multiarray._reconstruct", f"for {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise _refuse("numpy.core.multiarray.scalar", f"for dtype {dtype!r}")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(spec, align=False, copy=False):
    if not isinstance(spec, str):
        raise _refuse("numpy.dtype", f"for {type(spec).__name__}")
    return np.dtype(spec, align=bool(align), copy=bool(copy))


def _numpy_frombuffer(buffer, dtype, shape, order="C"):
    """numpy's protocol-5 array rebuilder: raw bytes -> a copied array (no object dtype)."""
    if not isinstance(buffer, (bytes, bytearray, pickle.PickleBuffer)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise _refuse("numpy._core.numeric._frombuffer", f"for dtype {dtype!r}")
    return np.frombuffer(buffer, dtype=dtype).reshape(tuple(shape), order=order).copy()


def _pure_path(*parts):
    from pathlib import PurePosixPath

    if not all(isinstance(p, str) for p in parts):
        raise _refuse("pathlib.Path", "with arguments that are not strings")
    return PurePosixPath(*parts)  # a path is only a name here; nothing touches the file system


def _reconstructor(cls, base, state):
    """copyreg._reconstructor (protocol 0/1 objects): an inert record when ``cls`` is a stand-in class."""
    if isinstance(cls, _InertMeta) and base is object and state is None:
        return InertObject.__new__(cls)
    raise _refuse("copyreg._reconstructor", f"for {cls!r} on {base!r}")


def _newobj(cls, *args):
    """copyreg.__newobj__ = NEWOBJ."""
    if isinstance(cls, _InertMeta):
        return InertObject.__new__(cls, *args)
    raise _refuse("copyreg.__newobj__", f"for {cls!r}")


def _newobj_ex(cls, args, kwargs):
    if isinstance(cls, _InertMeta):
        return InertObject.__new__(cls, *args, **kwargs)
    raise _refuse("copyreg.__newobj_ex__", f"for {cls!r}")


def _getattr(obj, name, *default):
    """builtins.getattr (Ultralytics pickles e.g. a bound ``forward``): only on inert objects, giving a name record."""
    if (isinstance(obj, (InertObject, InertAttribute)) or isinstance(obj, _InertMeta)) and isinstance(name, str):
        return InertAttribute(obj, name)
    raise _refuse("builtins.getattr", f"on a {type(obj).__name__}")


#: classes that checkpoints build with a no-argument call (``REDUCE`` of ``(cls, ())``) and then ``BUILD``: read as
#: inert records (namespaces of training settings)
_EMPTY_CALL_INERT = frozenset({
    "types.SimpleNamespace", "argparse.Namespace", "ultralytics.utils.IterableSimpleNamespace",
    "ultralytics.yolo.utils.IterableSimpleNamespace",
})

_VALUES: dict[str, Any] = {
    "collections.OrderedDict": OrderedDict,
    **{f"builtins.{t.__name__}": t for t in (set, frozenset, list, dict, tuple, int, float, complex, bool, str, bytes,
                                             bytearray, slice, range, object)},
    "builtins.getattr": _getattr,
    "_codecs.encode": _codecs_encode,
    "copyreg._reconstructor": _reconstructor,
    "copyreg.__newobj__": _newobj,
    "copyreg.__newobj_ex__": _newobj_ex,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch.Tensor": torch.Tensor,
    "torch._tensor.Tensor": torch.Tensor,
    "torch.nn.parameter.Parameter": torch.nn.Parameter,
    "torch.Size": torch.Size,
    "torch.device": torch.device,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": _numpy_dtype,
    **{f"{m}.multiarray._reconstruct": _numpy_reconstruct for m in ("numpy.core", "numpy._core")},
    **{f"{m}.multiarray.scalar": _numpy_scalar for m in ("numpy.core", "numpy._core")},
    **{f"{m}.numeric._frombuffer": _numpy_frombuffer for m in ("numpy.core", "numpy._core")},
    **{f"{m}.{c}": _pure_path for m in ("pathlib", "pathlib._local")
       for c in ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath")},
    **{f"torch.{name}": value for name, value in vars(torch).items() if isinstance(value, torch.dtype)},
}

#: what REDUCE / INST / OBJ may call (identity checks; classes used only as values are not here)
_CALLABLE_IDS = frozenset(id(v) for v in (
    OrderedDict, set, frozenset, list, dict, tuple, int, float, complex, bool, str, bytes, bytearray, slice, range,
    _getattr, _codecs_encode, _reconstructor, _newobj, _newobj_ex, _rebuild_tensor, _rebuild_tensor_v2,
    _rebuild_parameter, _rebuild_from_type_v2, torch.Size, torch.device, _numpy_dtype, _numpy_reconstruct,
    _numpy_scalar, _numpy_frombuffer, _pure_path))

#: what NEWOBJ may instantiate besides the inert stand-ins
_NEWOBJ_TYPES = (OrderedDict, set, frozenset, list, dict, tuple)


def _describe(func: Any) -> str:
    if isinstance(func, _InertMeta):
        return f"{func.inert_module}.{func.inert_name}"
    name = getattr(func, "__qualname__", None) or type(func).__name__
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else str(name)


class Unpickler(pickle._Unpickler):
    """A pickle reader that imports nothing and calls only the allow-listed rebuilders (see the module doc)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        key = f"{module}.{name}"
        if key in _VALUES:
            return _VALUES[key]
        return _inert_class(module, name)

    def _call(self, func: Any, args: tuple) -> Any:
        if isinstance(func, _InertMeta):
            if f"{func.inert_module}.{func.inert_name}" in _EMPTY_CALL_INERT and not args:
                return InertObject.__new__(func)
            raise _refuse(_describe(func), "a call with arguments" if args else "a call")
        if id(func) not in _CALLABLE_IDS:
            raise _refuse(_describe(func))
        return func(*args)

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        if not isinstance(args, tuple):
            raise _refuse(_describe(stack[-1]), "with arguments that are not a tuple")
        stack[-1] = self._call(stack[-1], args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, tuple(args), {}))

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, tuple(args), dict(kwargs)))

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    @staticmethod
    def _new(cls: Any, args: tuple, kwargs: dict) -> Any:
        if isinstance(cls, _InertMeta):
            return InertObject.__new__(cls, *args, **kwargs)
        if isinstance(cls, type) and cls in _NEWOBJ_TYPES and not kwargs:
            return cls.__new__(cls, *args)
        raise _refuse(f"{_describe(cls)}.__new__")

    def _instantiate(self, klass: Any, args: list) -> None:  # protocol 0/1 INST and OBJ
        if isinstance(klass, _InertMeta) and not args:
            self.append(InertObject.__new__(klass))
        else:
            self.append(self._call(klass, tuple(args)))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, InertObject):
            inst.__setstate__(state)
        elif isinstance(inst, np.ndarray) and type(inst) is np.ndarray or isinstance(inst, np.dtype):
            inst.__setstate__(state)
        else:
            raise _refuse(f"{_describe(type(inst))}.__setstate__", "state for an object that is not an inert record")

    dispatch[pickle.BUILD[0]] = load_build


def load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` with :class:`Unpickler` (what ``torch.load(pickle_module=...)`` calls)."""
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs: Any) -> Any:
    return Unpickler(io.BytesIO(data), **kwargs).load()


def load_checkpoint(path: Path, owner: str, fix: str) -> Any:
    """Read a torch checkpoint (zip or legacy format, or a plain pickle) on the CPU without running its code.

    owner: who reads it, for messages (``task model yolov5:yolov5n.pt``); fix: what the user should do when the
    file cannot be used. Raises BadInputError naming the file (and the callable, when the pickle asks for a call).
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist()):
                    raise BadInputError(f"{owner}: {path} is a TorchScript archive (it runs code when loaded), not a "
                                        f"checkpoint; {fix}")
        with warnings.catch_warnings():  # legacy files: torch cannot compare the source of classes it never imported
            warnings.filterwarnings("ignore", message="Couldn't retrieve source code for container")
            return torch.load(path, map_location="cpu", weights_only=False, pickle_module=sys.modules[__name__])
    except RefusedCallError as exc:
        raise BadInputError(f"{owner}: checkpoint {path}: {exc}. Do not open this file with torch.load either; {fix}") from None
    except BadInputError:
        raise
    except Exception as exc:
        raise BadInputError(f"{owner}: cannot read checkpoint {path} ({type(exc).__name__}: {exc}); {fix}") from exc


# walking inert modules ------------------------------------------------------------------------------------------
def _module_parts(record: Any, where: str) -> tuple[dict, dict, dict, set]:
    if not isinstance(record, InertObject):
        raise BadInputError(f"{where} is a {type(record).__name__}, not a pickled torch module")
    attrs = inert_attrs(record)
    parts = [attrs.get(k) for k in ("_parameters", "_buffers", "_modules")]
    if not all(isinstance(p, dict) for p in parts):
        raise BadInputError(f"{where} ({inert_ref(record)}) is not a pickled torch module (no _parameters, _buffers "
                            f"and _modules)")
    skip = attrs.get("_non_persistent_buffers_set") or set()
    return parts[0], parts[1], parts[2], set(skip)


def module_state_dict(record: Any, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """The flat state dict (``conv.weight``, ``bn.running_mean``, ``m.0.anchors`` ...) of an inert ``nn.Module``
    record, in ``Module.state_dict()`` order: own parameters, own persistent buffers, then each child's.

    A real ``torch.nn.Module`` is accepted too (its ``state_dict()``).
    """
    if isinstance(record, torch.nn.Module):
        return OrderedDict((prefix + k, v.detach()) for k, v in record.state_dict().items())
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    _walk(record, prefix, out, prefix.rstrip(".") or "the checkpoint's model")
    return out


def _walk(record: Any, prefix: str, out: OrderedDict, where: str) -> None:
    params, buffers, modules, skip = _module_parts(record, where)
    for name, value in params.items():
        if value is not None:
            out[prefix + name] = _tensor(value, prefix + name)
    for name, value in buffers.items():
        if value is not None and name not in skip:
            out[prefix + name] = _tensor(value, prefix + name)
    for name, child in modules.items():
        if child is not None:
            _walk(child, f"{prefix}{name}.", out, f"{prefix}{name}")


def _tensor(value: Any, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise BadInputError(f"state entry {name} is a {type(value).__name__}, not a tensor")
    return value.detach()


def to_float32(state: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Half / bfloat16 tensors (YOLOv5 and Ultralytics save fp16) as float32; others unchanged."""
    return OrderedDict((k, v.float() if v.dtype in (torch.float16, torch.bfloat16) else v) for k, v in state.items())


def require_plain(value: Any, what: str, _depth: int = 0) -> Any:
    """``value`` when it is plain data (dict, list, tuple, str, numbers, bool, None) all the way down, else
    BadInputError naming ``what`` (e.g. a model ``yaml`` holding an inert object)."""
    if _depth > 50:
        raise BadInputError(f"{what} is nested too deeply")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            require_plain(item, what, _depth + 1)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            require_plain(key, what, _depth + 1)
            require_plain(item, what, _depth + 1)
        return value
    raise BadInputError(f"{what} holds a {inert_ref(value)}, expected plain data")

