"""The aiohttp application: node-half pod routes first, then the control endpoint, then the generic API."""

from __future__ import annotations

import logging

from aiohttp import web

from . import errors
from .api_request import status_response
from .control import add_control_routes
from .handlers import Api

log = logging.getLogger("kubesim.server")


@web.middleware
async def _errors(request: web.Request, handler):
    """Nothing escapes as a bare 500 or a hung connection: every failure is a Status."""
    try:
        return await handler(request)
    except errors.ApiError as e:
        return status_response(e)
    except ConnectionResetError:
        raise  # the client left: nobody to answer
    except web.HTTPException as e:
        if e.status_code == 405:
            return status_response(errors.method_not_allowed())
        if e.status_code == 404:
            return status_response(errors.no_such_route())
        raise
    except Exception as e:
        log.exception("unhandled error: %s %s", request.method, request.path_qs)
        return status_response(errors.internal(f"{type(e).__name__}: {e}"))


def build_app(cluster) -> web.Application:
    from .authz import middleware as authorization
    from .podapi import add_pod_routes

    app = web.Application(middlewares=[_errors, authorization(cluster)], client_max_size=64 * 1024 * 1024)
    api = Api(cluster)
    app["api"] = api
    add_pod_routes(app, cluster)
    add_control_routes(app, cluster)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app
