"""User-defined devices from a TOML file.

The file is ``$PERFSTUDENT_DEVICES`` if set, else ``devices.toml`` in the user
config dir (``~/.config/perfstudent/devices.toml`` on Linux). One table per
device::

    [devices.lab-pi]
    kind = "cpu"                       # cpu | cuda
    description = "Pi 4 on the lab bench"
    reach = "rpc"                      # local | rpc
    rpc_key = "lab-pi"                 # the key its TVM RPC server registers
    tvm_target = "raspberry-pi/4b-aarch64"   # a TVM tag or an inline table
    default_threads = 4
    cross_compiler = "aarch64-linux-gnu-g++" # for rpc devices of another arch

Every error names the file and the device.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from perfstudent.errors import InputError
from perfstudent.io import parse_toml, read_text
from perfstudent.profiler.device import Device

ENV = "PERFSTUDENT_DEVICES"
_KEYS = {"kind", "description", "reach", "rpc_key", "tvm_target", "default_threads",
         "cross_compiler", "properties"}


def devices_file() -> Path:
    """Where user devices are read from (``$PERFSTUDENT_DEVICES`` or the user config dir)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    from platformdirs import user_config_dir

    return Path(user_config_dir("perfstudent")) / "devices.toml"


def load_user_devices(builtin: Collection[str] = (), path: Path | None = None) -> dict[str, Device]:
    """Devices defined in ``path`` (default :func:`devices_file`); {} if it does not exist.

    ``builtin``: the names of the built-in devices, which a user device may not take.
    """
    path = devices_file() if path is None else path
    if not path.exists():
        if os.environ.get(ENV) and path == Path(os.environ[ENV]):
            raise InputError(f"{ENV}={path} does not exist")
        return {}
    data = parse_toml(read_text(path, "devices file"), str(path))
    unknown = set(data) - {"devices"}
    if unknown or not isinstance(data.get("devices", {}), dict):
        raise InputError(f"{path}: expected only [devices.NAME] tables")
    return {name: device_from_table(name, table, path, builtin)
            for name, table in data.get("devices", {}).items()}


def device_from_table(name: str, table: Any, path: Path,
                      builtin: Collection[str] = ()) -> Device:
    """Validate one ``[devices.NAME]`` table into a Device (``builtin``: names already taken)."""
    where = f"{path}: device {name!r}"
    if name in builtin:
        raise InputError(f"{where}: the name is a built-in device; choose another")
    if not isinstance(table, dict):
        raise InputError(f"{where}: expected a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise InputError(f"{where}: unknown keys {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(_KEYS))}")
    kind = _choice(table.get("kind", "cpu"), ("cpu", "cuda"), where, "kind")
    reach = _choice(table.get("reach", "local"), ("local", "rpc"), where, "reach")
    rpc_key = table.get("rpc_key")
    if reach == "rpc" and not (isinstance(rpc_key, str) and rpc_key):
        raise InputError(f"{where}: reach = \"rpc\" needs rpc_key = \"KEY\"")
    threads = table.get("default_threads", 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise InputError(f"{where}: default_threads must be a positive integer")
    properties = dict(table.get("properties", {}))
    if "cross_compiler" in table:
        properties["cross_compiler"] = str(table["cross_compiler"])
    return Device(
        name=name, kind=kind, description=str(table.get("description", f"user device {name}")),
        reach=reach, rpc_key=rpc_key, tvm_target=_target(table.get("tvm_target"), where),
        default_threads=threads, properties=properties,
    )


def _choice(value: Any, allowed: tuple[str, ...], where: str, key: str) -> str:
    if value not in allowed:
        raise InputError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _target(value: Any, where: str) -> dict[str, Any] | str | None:
    """A TVM target: a tag string or a table with ``kind``; checked by TVM when installed."""
    if value is None:
        return None
    if isinstance(value, str) and value.split()[0] != value:
        raise InputError(f"{where}: tvm_target strings with options are rejected by TVM >= 0.24; "
                         "use a table like { kind = \"llvm\", mcpu = \"cortex-a72\" } or a tag")
    if isinstance(value, dict) and "kind" not in value:
        raise InputError(f"{where}: tvm_target table needs kind = \"llvm\" | \"cuda\" | ...")
    if not isinstance(value, (str, dict)):
        raise InputError(f"{where}: tvm_target must be a tag string or a table")
    try:
        import tvm
    except ImportError:
        return value
    try:
        tvm.target.Target(value)
    except Exception as exc:
        raise InputError(f"{where}: TVM rejects tvm_target {value!r}: "
                         f"{str(exc).strip().splitlines()[-1]}") from None
    return value
