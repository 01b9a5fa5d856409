"""Where the model runs (``--device auto|gpu|cpu``) and the persistent XLA compilation cache.

JAX picks an accelerator when one is visible and otherwise falls back to the CPU with a
warning that is easy to miss: a GPU task that silently runs on the CPU costs GPU-hours
for CPU speed. :func:`select_device` makes the choice explicit:

- ``gpu``: the default JAX device must be a GPU; otherwise :class:`DeviceUnavailable`
  (exit status :data:`EXIT_DEVICE_UNAVAILABLE`, 69) before any weights are read.
- ``cpu``: JAX is restricted to the CPU (no CUDA initialisation, no GPU memory taken).
- ``auto``: whatever JAX chooses; the choice is logged.

Either way the device is described in one line (:class:`DeviceInfo`), logged first by the
commands that predict and recorded with the predictions.

Exit statuses shared by the commands: 69 (EX_UNAVAILABLE) requested device not there;
75 (EX_TEMPFAIL) out of accelerator memory, while loading, compiling or predicting:
retry with a smaller ``--batch-size``.

This module imports JAX only inside its functions, so ``genoseg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from typing import Optional

from .errors import GenosegError

log = logging.getLogger(__name__)

EXIT_DEVICE_UNAVAILABLE = 69
EXIT_DEVICE_OOM = 75
DEVICES = ("auto", "gpu", "cpu")
CACHE_ENV = "GENOSEG_JAX_CACHE_DIR"

_GPU_PLATFORMS = ("gpu", "cuda", "rocm")
_OOM_MARKERS = ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory", "CUDA_ERROR_OUT_OF_MEMORY",
                "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED")


class DeviceUnavailable(GenosegError):
    """The requested device is not visible to JAX (exit status 69)."""


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """The device JAX computes on.

    Attributes:
        platform: ``"gpu"``, ``"cpu"`` or ``"tpu"``.
        name: the device kind (``"NVIDIA H100 80GB HBM3"``) or, on the CPU, the processor.
        memory_bytes: accelerator memory usable by JAX; host memory on the CPU;
            ``None`` when unknown.
        count: devices of this platform visible to the process.
        detail: what else matters (CPU cores).
    """

    platform: str
    name: str
    memory_bytes: Optional[int]
    count: int = 1
    detail: str = ""

    def __str__(self) -> str:
        parts = [self.name]
        if self.memory_bytes:
            parts.append(f"{self.memory_bytes / 2**30:.1f} GiB")
        if self.detail:
            parts.append(self.detail)
        if self.count > 1:
            parts.append(f"1 of {self.count} visible")
        return f"{self.platform}: " + ", ".join(parts)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--jax-cache-dir`` (an argument group of their own)."""
    g = parser.add_argument_group("device")
    g.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to run the model: gpu (never falls back to the CPU: exit status "
                        f"{EXIT_DEVICE_UNAVAILABLE} when no GPU is visible), cpu, or auto "
                        "(what JAX finds; default)")
    g.add_argument("--jax-cache-dir", default=None, metavar="DIR",
                   help=f"persistent XLA compilation cache, shared by runs and tasks (default: ${CACHE_ENV}; "
                        "none when unset): only the first process per input shape compiles")


def setup_from_args(args: argparse.Namespace) -> DeviceInfo:
    """Select the device and the compilation cache from :func:`add_device_options`'s
    arguments; logs the device first. Call before loading a model."""
    info = select_device(args.device)
    log.info("device: %s", info)
    cache_dir = args.jax_cache_dir or os.environ.get(CACHE_ENV) or None
    if cache_dir:
        enable_compilation_cache(cache_dir)
    return info


def select_device(kind: str = "auto") -> DeviceInfo:
    """Make ``kind`` JAX's default device and describe it.

    Raises:
        DeviceUnavailable: ``kind == "gpu"`` and the default JAX backend is not a GPU
            (no GPU, no CUDA build of jaxlib, or ``CUDA_VISIBLE_DEVICES`` empty).
        ValueError: ``kind`` is not one of :data:`DEVICES`.
    """
    if kind not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, got {kind!r}")
    import jax

    if kind == "cpu":
        # Before the first backend query this keeps JAX off the GPU entirely (no CUDA
        # start-up, no memory preallocation); afterwards the default device still moves.
        jax.config.update("jax_platforms", "cpu")
        cpu = jax.devices("cpu")
        jax.config.update("jax_default_device", cpu[0])
        return describe(cpu[0], len(cpu))
    try:
        devices = jax.devices()
    except RuntimeError as exc:  # e.g. JAX_PLATFORMS names a backend that fails to start
        if kind == "gpu":
            raise DeviceUnavailable(f"--device gpu: JAX cannot start a backend ({_first_line(exc)})") from exc
        raise
    dev = devices[0]
    if kind == "gpu" and dev.platform not in _GPU_PLATFORMS:
        raise DeviceUnavailable(
            f"--device gpu: no GPU visible to JAX (it would run on {dev.platform}; jax {jax.__version__}, "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}, "
            f"JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS', '<unset>')}): run on a GPU node with the CUDA "
            "build of jaxlib (pip install 'jax[cuda12]'), or pass --device cpu "
            f"(exit status {EXIT_DEVICE_UNAVAILABLE})")
    return describe(dev, len(devices))


def describe(dev, count: int = 1) -> DeviceInfo:
    """:class:`DeviceInfo` for a ``jax.Device``."""
    platform = "gpu" if dev.platform in _GPU_PLATFORMS else dev.platform
    if platform == "cpu":
        from .parallel import available_cores

        return DeviceInfo("cpu", _cpu_name(), _host_memory(), count=1, detail=f"{available_cores()} cores")
    memory = None
    try:
        stats = dev.memory_stats() or {}
        memory = stats.get("bytes_limit") or stats.get("bytes_reservable_limit")
    except Exception:  # noqa: BLE001 - memory is informative only; some backends lack stats
        pass
    return DeviceInfo(platform, str(getattr(dev, "device_kind", dev.platform)), memory, count=count)


def current_device() -> DeviceInfo:
    """:class:`DeviceInfo` of JAX's default device (after :func:`select_device`)."""
    import jax

    default = jax.config.jax_default_device
    if default is not None and not isinstance(default, str):
        return describe(default, len(jax.devices(default.platform)))
    devices = jax.devices()
    return describe(devices[0], len(devices))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


def _host_memory() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


# ------------------------------------------------------------ out of memory
def is_device_oom(exc: BaseException) -> bool:
    """True for XLA's out-of-memory errors (``RESOURCE_EXHAUSTED``) on any backend, and
    the allocation failures of the CUDA libraries XLA calls while compiling."""
    if isinstance(exc, MemoryError):
        return False  # host memory: a smaller batch is not the fix
    text = str(exc)
    return any(m in text for m in _OOM_MARKERS)


def oom_message(args: argparse.Namespace) -> str:
    batch = getattr(args, "batch_size", None)
    with_batch = f" with --batch-size {batch}" if batch else ""
    return (f"out of accelerator memory{with_batch} (while loading, compiling or predicting); "
            "retry with a smaller --batch-size, or --compute-dtype bfloat16 "
            f"(exit status {EXIT_DEVICE_OOM})")


# ------------------------------------------------------ compilation cache
class CacheStats:
    """Counts persistent-cache hits and misses reported by JAX in this process."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.directory: Optional[str] = None

    def _event(self, event: str, **_kw) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            self.hits += 1
        elif event == "/jax/compilation_cache/cache_misses":
            self.misses += 1

    def __str__(self) -> str:
        return f"XLA compilation cache {self.directory}: {self.hits} hit(s), {self.misses} miss(es)"


CACHE_STATS = CacheStats()
_listening = False


def enable_compilation_cache(directory: str) -> CacheStats:
    """Use ``directory`` as JAX's persistent compilation cache for this process.

    Every compiled executable is written there (no minimum compile time or size, so the
    small shapes of tests are cached as well), and a later process that compiles the
    same computation for the same device loads it instead. The directory may be shared
    by concurrent tasks (JAX writes entries atomically). Returns the hit/miss counters.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    global _listening
    directory = os.path.abspath(os.path.expanduser(directory))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise GenosegError(f"--jax-cache-dir {directory}: cannot create it ({exc.strerror})") from exc
    if not os.access(directory, os.W_OK):
        raise GenosegError(f"--jax-cache-dir {directory}: not writable")
    if not log.isEnabledFor(logging.DEBUG):  # JAX announces every cache reset at INFO
        logging.getLogger("jax._src.compilation_cache").setLevel(logging.WARNING)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    compilation_cache.reset_cache()  # takes effect even if this process compiled before
    if not _listening:
        jax.monitoring.register_event_listener(CACHE_STATS._event)
        _listening = True
    CACHE_STATS.directory = directory
    log.info("XLA compilation cache: %s", directory)
    return CACHE_STATS


def log_cache_stats() -> None:
    """Log the cache's hits and misses when a cache is enabled."""
    if CACHE_STATS.directory:
        log.info("%s", CACHE_STATS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
