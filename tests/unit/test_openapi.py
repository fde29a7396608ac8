"""The OpenAPI document describes every route of the hub's JSON APIs, with its methods."""

from __future__ import annotations

import re

from aiohttp import web

from connectors.ministry.api import MinistriesApi
from connectors.ministry.routes import ResultsDoor
from connectors.national_portal.procedures.api import ProceduresApi
from connectors.payment_platform.api import PaymentsApi
from connectors.vdxp.api import VdxpApi
from hub.api import EventsApi
from hub.dashboard.api import AdminApi
from hub.dashboard.board import Board
from hub.openapi import openapi_document
from hub.plugins import built_in


def _routes() -> list[web.RouteDef]:
    # Instances without their dependencies: only the route table is read.
    return [
        *object.__new__(EventsApi).routes(),
        *object.__new__(ProceduresApi).routes(),
        *object.__new__(PaymentsApi).routes(),
        *object.__new__(MinistriesApi).routes(),
        *object.__new__(ResultsDoor).routes(),
        *object.__new__(VdxpApi).routes(),
        *_admin().routes(),
    ]


def _admin() -> AdminApi:
    api = object.__new__(AdminApi)
    api.board = Board.__new__(Board)
    api.board.flows = dict.fromkeys(c.page for c in built_in() if c.page)
    return api


def test_every_api_route_is_documented_with_its_method() -> None:
    paths = openapi_document(built_in())["paths"]
    routes = _routes()
    assert routes
    for route in routes:
        assert route.path in paths, f"{route.method} {route.path} is missing from OpenAPI"
        assert route.method.lower() in paths[route.path], f"{route.method} {route.path}"


def test_path_parameters_are_declared() -> None:
    for path, item in openapi_document(built_in())["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_the_procedure_model_is_a_component() -> None:
    schemas = openapi_document(built_in())["components"]["schemas"]
    assert {"Procedure", "ChannelTerms", "ProcedureFee", "PaymentRecord"} <= set(schemas)


def test_pausing_a_connector_is_an_operators_act_with_the_csrf_token() -> None:
    paths = openapi_document(built_in())["paths"]
    for action in ("pause", "resume"):
        post = paths[f"/api/v1/admin/connectors/{{name}}/{action}"]["post"]
        assert post["security"] == [{"session": [], "csrf": []}]
        assert {"200", "400", "401", "403", "404"} <= set(post["responses"])
        assert "changed" in post["responses"]["200"]["description"]
    overview = paths["/api/v1/admin/overview"]["get"]["responses"]["200"]["description"]
    assert "credentials_refused" in overview
    assert "circuit_open" not in overview
