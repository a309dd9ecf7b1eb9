"""``torch.compile`` that degrades, never fails: compiled for the shapes warmed at start, eager otherwise.

A compiled module (``fullgraph=True``, static shapes) holds one graph per input shape. Left to
itself, dynamo compiles every new size on first use: on the single GPU thread, holding every
queued request, billed to the one request that brought the size, and after
``recompile_limit`` shapes it raises ``FailOnRecompileLimitHit`` into that request.

``ShapeCompiled`` keeps the eager module beside its compiled twin. Compilation happens only
while ``warming`` (the warm-up at start, on the serving thread, for the configured sizes and
every batch size); afterwards a call whose input shape was warmed runs compiled under the
``fail_on_recompile`` stance, and every other call runs eagerly. Nothing ever compiles during
a request. Each eager fallback is counted by reason (``EagerFallbacks``, exported as
``boltgate_worker_eager_fallbacks_total``) and the first of each kind is logged:

    shape_not_warmed     the call's shape was not compiled at start (an unconfigured size)
    recompile_refused    a warmed shape still failed a guard; that shape runs eagerly from now on
    compile_failed       compiling raised at warm-up (no C compiler, an unsupported op...):
                         the module runs eagerly from now on
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

ShapeKey = tuple[tuple[int, ...], torch.dtype]


class EagerFallbacks:
    """How many calls of a compiled module ran eagerly, by (module, reason); read at every scrape."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, module: str, reason: str) -> None:
        with self._lock:
            first = (module, reason) not in self._counts
            self._counts[module, reason] = self._counts.get((module, reason), 0) + 1
        if first:
            log.warning("the compiled %s ran eagerly (%s); counted in boltgate_worker_eager_fallbacks_total",
                        module, reason)

    def snapshot(self) -> Mapping[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


class ShapeCompiled(torch.nn.Module):
    """``module`` run compiled for the shapes compiled while warming, eagerly for any other.

    Attribute reads that the wrapper does not answer (``config``, ``dtype``, submodules) go to the
    eager module, so diffusers pipelines use it as they would the module itself.
    """

    compiled: Any
    label: str
    fallbacks: EagerFallbacks
    warmed: set[ShapeKey]
    warming: bool
    broken: bool

    def __init__(self, module: torch.nn.Module, *, name: str, compile_module: Callable[[Any], Any],
                 fallbacks: EagerFallbacks) -> None:
        super().__init__()
        self.eager = module
        # Plain attributes (object.__setattr__): the compiled twin must not register as a submodule.
        object.__setattr__(self, "compiled", compile_module(module))
        object.__setattr__(self, "label", name)
        object.__setattr__(self, "fallbacks", fallbacks)
        object.__setattr__(self, "warmed", set())
        object.__setattr__(self, "warming", False)
        object.__setattr__(self, "broken", False)

    def forward(self, sample: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        key: ShapeKey = (tuple(sample.shape), sample.dtype)
        if self.broken:
            self.fallbacks.add(self.label, "compile_failed")
        elif self.warming:
            return self._compile_while_warming(key, sample, *args, **kwargs)
        elif key in self.warmed:
            try:
                with torch.compiler.set_stance("fail_on_recompile"):
                    return self.compiled(sample, *args, **kwargs)
            except torch.OutOfMemoryError:
                raise
            except RuntimeError:
                log.exception("the compiled %s refused a warmed shape %s; it runs eagerly from now on",
                              self.label, key[0])
                self.warmed.discard(key)
                self.fallbacks.add(self.label, "recompile_refused")
        else:
            self.fallbacks.add(self.label, "shape_not_warmed")
        return self.eager(sample, *args, **kwargs)

    def _compile_while_warming(self, key: ShapeKey, sample: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self.compiled(sample, *args, **kwargs)
        except torch.OutOfMemoryError:
            raise
        except Exception:
            log.exception("compiling the %s failed; it runs eagerly from now on", self.label)
            object.__setattr__(self, "broken", True)
            self.fallbacks.add(self.label, "compile_failed")
            return self.eager(sample, *args, **kwargs)
        self.warmed.add(key)
        return result

    def set_warming(self, warming: bool) -> None:
        object.__setattr__(self, "warming", warming)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["eager"], name)


def compiler(mode: str, backend: str) -> Callable[[Any], Any]:
    """``torch.compile`` with static shapes and one graph per module (``mode`` is Inductor's only)."""
    options: dict[str, Any] = {"backend": backend, "fullgraph": True, "dynamic": False}
    if backend == "inductor":
        options["mode"] = mode
    return lambda module: torch.compile(module, **options)


def ensure_recompile_room(shapes: int) -> None:
    """Raise dynamo's per-function recompile limit to hold ``shapes`` warmed shapes (never lower it).

    The UNets of every step count share their compiled graphs (same code, same shapes), so the
    count is the warmed sizes times the batch sizes.
    """
    config: Any = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    if getattr(config, name) < shapes:
        log.info("raising torch._dynamo.config.%s to %d for the warmed shapes", name, shapes)
        setattr(config, name, shapes)


def use_compile_cache(directory: Path) -> None:
    """Keep Inductor's and Triton's caches in ``directory`` (a volume), so a restart reuses them."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(directory / "inductor")
    os.environ["TRITON_CACHE_DIR"] = str(directory / "triton")
    log.info("torch.compile caches in %s", directory)
