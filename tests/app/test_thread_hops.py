"""Every route runs on the event loop: FastAPI runs a plain ``def`` endpoint or dependency in its thread pool,
a thread hop per call. The request path's dependencies only read app state or a header, so a hop is pure
cost — measured: /model/parse answered ~0.5 ms sooner without them (docs/rasa.md)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient


def _runs_on_loop(call: Any) -> bool:
    if inspect.iscoroutinefunction(call):
        return True
    # FastAPI's security schemes (HTTPBearer, APIKeyQuery, …) are instances with an async __call__
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__)


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _routes(routes: list[Any]) -> Iterator[tuple[Any, list[Any]]]:
    """(route, the dependencies its routers add), through included routers."""
    for route in routes:
        router = getattr(route, "original_router", None)  # an include_router()'d APIRouter
        if router is not None:
            for inner, extra in _routes(router.routes):
                yield inner, [*router.dependencies, *extra]
        else:
            yield route, []


def _name(call: Any) -> str:
    return str(getattr(call, "__qualname__", type(call).__qualname__))


def test_no_route_or_dependency_runs_in_the_thread_pool(client: TestClient) -> None:
    """Regression: services, engine, limits, bearer, gateway and the Rasa token check were plain functions,
    each a hop to the thread pool and back on every request."""
    offenders, checked = set(), 0
    for route, router_deps in _routes(client.app.routes):
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            continue
        checked += 1
        calls = [route.endpoint, *(d.dependency for d in router_deps)]
        calls += [dep.call for dep in _dependencies(route.dependant) if dep.call is not None]
        offenders |= {f"{route.path}: {_name(call)}" for call in calls if not _runs_on_loop(call)}
    assert checked > 40, "the walk missed the included routers"
    assert sorted(offenders) == []
