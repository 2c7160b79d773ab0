"""Run the Argo CD health check users install (manifests/gitops/argocd-health.lua) as
Argo CD does: the object as the global `obj`, in Lua 5.1 (Argo CD's gopher-lua speaks
5.1), the returned table read back as `{status, message}`."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from lupa import lua51

SCRIPT = Path(__file__).resolve().parents[1] / "manifests" / "gitops" / "argocd-health.lua"


@functools.cache
def _check() -> Any:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    body = SCRIPT.read_text()
    return lua, lua.eval(f"function(obj)\n{body}\nend")


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    lua, check = _check()
    result = check(_to_lua(lua, obj))
    return str(result["status"]), str(result["message"])
