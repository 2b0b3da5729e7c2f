"""Catch, on a CPU, the device-placement bugs that only a GPU would show.

On a CPU every tensor lives on one device, so a tensor made on the host where the model's device was
meant (`torch.zeros(())` as a loss accumulator, `torch.tensor(ids)` as an index) runs fine here and
crashes the first step on CUDA ("Expected all tensors to be on the same device"). `DeviceGuard` is a
`TorchFunctionMode` that gives every tensor a side, as if the model lived on an accelerator:

- device: parameters, tensors moved with `.to(<device>)` / `.cuda()`, tensors made with an explicit
  `device=` (on a CPU the device is called "cpu": naming it means the model's device), and whatever
  an operation computes from a device tensor;
- host: tensors that telelake's own code (training/, eval/, pipelines/, jobs/) makes without saying
  where (`torch.zeros(...)`, `torch.tensor(...)`, `torch.from_numpy(...)`), `.cpu()`, and whatever is
  computed from host tensors alone.

An operation whose operands come from both sides is replayed in PyTorch's own `FakeTensorMode`, with
the device operands as fake `cuda:0` tensors and the host ones on the CPU (nothing is allocated and no
GPU is needed): where PyTorch reports a device mismatch, the guard raises `DeviceMixError` naming the
operation, the call site and where each host operand was made. PyTorch decides what is legal (a 0-dim
host tensor may take part in a CUDA operation, `cuda[cpu_index]` works, `cpu0d += cuda0d` and
`cuda.index_select(0, cpu_index)` do not), so the guard follows CUDA's rules instead of a list of ours.

It also records every place where our code brings a device tensor's value back to the host (`float`,
`.item()`, `.tolist()`, `.cpu()`, `.nonzero()`, boolean-mask indexing: each a host sync on CUDA), so a
test can show that a training step syncs a fixed number of times, not once per micro-batch.

    with DeviceGuard() as guard:
        trainer.train()
    guard.syncs          # [Sync(site='training/trainer.py:262 in train_step', op='TensorBase.__float__'), ...]
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

HOST, DEVICE = "host", "device"
_SIDE = "_telelake_side"
_MADE = "_telelake_made"

REPO = Path(__file__).resolve().parents[1]
OWN_CODE = tuple(str(REPO / d) + os.sep for d in ("training", "eval", "pipelines", "jobs", "benchmarks"))
"""Files whose tensor factories make host tensors when they name no device."""
_SKIP = (os.path.dirname(torch.__file__) + os.sep, __file__)

FACTORIES = frozenset({
    "zeros", "ones", "empty", "full", "tensor", "as_tensor", "asarray", "from_numpy", "arange", "range", "linspace",
    "logspace", "eye", "rand", "randn", "randint", "randperm", "empty_strided", "scalar_tensor", "zeros_like",
    "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
})
"""Functions that make a new tensor; where no device is named they make it on the host (the *_like
ones copy their input's device, so they keep its side)."""
SYNCS = frozenset({"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "cpu", "nonzero",
                   "argwhere", "masked_select", "unique", "unique_consecutive", "__repr__", "__format__"})
"""Tensor operations that wait for the device and copy a value back to the host."""
TRANSFERS = frozenset({"to", "cuda", "cpu", "copy_", "__setstate__", "__reduce_ex__"})
"""Operations that move data between the sides by design: never a mix."""


class DeviceMixError(RuntimeError):
    """An operation mixes host and device tensors in a way CUDA refuses."""


@dataclass(frozen=True)
class Sync:
    site: str
    """file:line in function, relative to the repository."""
    op: str


class DeviceGuard(TorchFunctionMode):
    """Run the code inside as if the model lived on `cuda:0`; see the module docstring."""

    def __init__(self, own_code: tuple[str, ...] = OWN_CODE) -> None:
        super().__init__()
        self.own_code = own_code
        self.syncs: list[Sync] = []
        self.checked = 0
        """Operations with operands from both sides that were checked (and allowed)."""
        self._sites: dict = {}

    # -- what tests read ---------------------------------------------------------------------------

    def sync_counts(self) -> Counter:
        return Counter(s.site for s in self.syncs)

    def reset(self) -> None:
        self.syncs.clear()
        self.checked = 0

    # -- the mode --------------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        if name in ("__get__", "__set__", "device", "dtype", "Size"):  # attribute reads, torch.device(...)
            out = func(*args, **kwargs)
            if name == "__get__" and isinstance(out, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
                if side(args[0]) is not None and side(out) is None:  # .grad, .data, .T: where the tensor is
                    _mark(out, side(args[0]), None)
            return out
        operands = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        sides = {side(t) for t in operands} - {None}
        site = self._site()
        if site is not None and self._is_sync(name, args, kwargs):
            self.syncs.append(Sync(site, name))
        if HOST in sides and DEVICE in sides and name not in TRANSFERS:
            self._check(func, name, args, kwargs, site)
        out = func(*args, **kwargs)
        made = self._made_side(name, args, kwargs, site, sides)
        if out is not None and args and out is args[0] and made != side(out) and name in ("to", "cuda", "cpu"):
            out = out.view_as(out)  # on a CPU .to(device) returns the host tensor itself: the copy gets its own side
        if made is not None:
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
                    _mark(t, made, site)
        return out

    def _made_side(self, name: str, args, kwargs, site: str | None, sides: set) -> str | None:
        """The side of what `name` returns."""
        if name in ("to", "cuda", "cpu"):
            if name == "cuda":
                return DEVICE
            if name == "cpu":
                return HOST
            target = _target_device(args[1:], kwargs)
            if target is None:  # a dtype change: same side
                return _merge(sides)
            if isinstance(target, torch.Tensor):
                return side(target)
            return DEVICE
        if name in FACTORIES:
            if "device" in kwargs and kwargs["device"] is not None:
                return DEVICE
            if name.endswith("_like"):
                return _merge(sides)
            return HOST if site is not None else None
        return _merge(sides)

    def _is_sync(self, name: str, args, kwargs) -> bool:
        if not args or not isinstance(args[0], torch.Tensor) or side(args[0]) != DEVICE:
            return False
        if name in SYNCS:
            return True
        if name == "__getitem__" and len(args) > 1:
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)
        return False

    def _check(self, func, name: str, args, kwargs, site: str | None) -> None:
        """Replay the operation on fake tensors placed as on a GPU; raise where PyTorch refuses it."""
        from torch._subclasses.fake_tensor import FakeTensorMode

        mode = FakeTensorMode(allow_non_fake_inputs=True)
        with mode:
            def fake(x):
                if not isinstance(x, torch.Tensor):
                    return x
                where = "cpu" if side(x) == HOST else "cuda:0"
                return torch.empty_strided(tuple(x.shape), tuple(x.stride()), dtype=x.dtype, device=where)

            fargs, fkwargs = tree_map(fake, args), tree_map(fake, kwargs)
            try:
                func(*fargs, **fkwargs)
            except Exception as exc:  # noqa: BLE001 - only a device complaint is ours to raise
                if _is_device_error(exc):
                    raise DeviceMixError(self._explain(name, args, kwargs, site, exc)) from None
        self.checked += 1

    def _explain(self, name: str, args, kwargs, site: str | None, exc: Exception) -> str:
        lines = [f"{name} at {site or _caller()} mixes host and device tensors; on a GPU: {str(exc).splitlines()[0]}"]
        for t in tree_flatten((args, kwargs))[0]:
            if isinstance(t, torch.Tensor):
                where = side(t) or "device (library-made)"
                made = getattr(t, _MADE, None)
                lines.append(f"  {where}: {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"
                             + (f", made at {made}" if made else ""))
        lines.append("make the host tensor on the model's device (device=...), or move it with .to(device)")
        return "\n".join(lines)

    def _site(self) -> str | None:
        """'file:line in function' of the nearest caller outside torch, when it is telelake's code."""
        f = sys._getframe(2)
        while f is not None and f.f_code.co_filename.startswith(_SKIP):
            f = f.f_back
        if f is None:
            return None
        code = f.f_code
        ours = self._sites.get(code)
        if ours is None:
            ours = self._sites[code] = code.co_filename.startswith(self.own_code)
        if not ours:
            return None
        return f"{os.path.relpath(code.co_filename, REPO)}:{f.f_lineno} in {code.co_name}"


def side(t: torch.Tensor) -> str | None:
    """host, device, or None for a tensor made by library code on its own."""
    if isinstance(t, torch.nn.Parameter):
        return DEVICE
    return getattr(t, _SIDE, None)


def _mark(t: torch.Tensor, where: str, site: str | None) -> None:
    try:
        setattr(t, _SIDE, where)
        if where == HOST and site is not None and not hasattr(t, _MADE):
            setattr(t, _MADE, site)
    except (AttributeError, RuntimeError):  # some tensor subclasses take no attributes
        pass


def _merge(sides: set) -> str | None:
    return DEVICE if DEVICE in sides else HOST if HOST in sides else None


def _target_device(args, kwargs):
    """The device a .to(...) call names (a torch.device, a string, or a tensor to follow), or None."""
    if kwargs.get("device") is not None:
        return kwargs["device"]
    for a in args:
        if isinstance(a, (torch.device, str)) or isinstance(a, torch.Tensor):
            return a
    return None


def _is_device_error(exc: Exception) -> bool:
    from torch._subclasses.fake_tensor import FakeTensorDeviceMismatchError

    if isinstance(exc, FakeTensorDeviceMismatchError):
        return True
    msg = str(exc)
    return isinstance(exc, RuntimeError) and "device" in msg and ("cpu" in msg and "cuda" in msg)


def _name(func) -> str:
    name = getattr(func, "__name__", None) or getattr(func, "__qualname__", None) or repr(func)
    return name


def _caller() -> str:
    f = sys._getframe(3)
    while f is not None and f.f_code.co_filename.startswith(_SKIP):
        f = f.f_back
    return f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else "?"
