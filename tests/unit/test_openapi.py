"""The OpenAPI document, quick checks without a broker: every route of the JSON APIs is
documented with its methods (read from the route tables; the served application is checked in
both directions by tests/integration/test_openapi_served.py), every JSON body has a schema,
and a fragment's models become components, one name each."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel

from connectors.ministry.api import MinistriesApi
from connectors.ministry.routes import ResultsDoor
from connectors.national_portal.procedures.api import ProceduresApi
from connectors.payment_platform.api import PaymentsApi
from connectors.vdxp.api import VdxpApi
from hub.api import EventsApi
from hub.dashboard.api import AdminApi
from hub.dashboard.board import Board
from hub.openapi import DuplicateModel, content, openapi_document, operation
from hub.plugins import Connector, built_in


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
        for op in item.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_the_procedure_model_is_a_component() -> None:
    schemas = openapi_document(built_in())["components"]["schemas"]
    assert {"Procedure", "ChannelTerms", "ProcedureFee", "PaymentRecord"} <= set(schemas)


def test_pausing_a_connector_is_an_operators_act_with_the_csrf_token() -> None:
    doc = openapi_document(built_in())
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for action in ("pause", "resume"):
        post = paths[f"/api/v1/admin/connectors/{{name}}/{action}"]["post"]
        assert post["security"] == [{"session": [], "csrf": []}]
        assert {"200", "400", "401", "403", "404"} <= set(post["responses"])
        reply = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert reply == {"$ref": "#/components/schemas/PauseResult"}
    assert "changed" in schemas["PauseResult"]["required"]
    states = schemas["Card"]["properties"]["state"]["enum"]
    assert "credentials_refused" in states
    assert "circuit_open" not in states


def _bodies(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            found = [("request", op.get("requestBody", {}).get("content", {}))]
            found += [(code, r.get("content", {})) for code, r in op["responses"].items()]
            for where, media in found:
                if "application/json" in media:
                    out.append((f"{method} {path}", where, "json", media["application/json"]))
    return out


def test_every_json_body_has_a_schema() -> None:
    bodies = _bodies(openapi_document(built_in()))
    assert len(bodies) > 150
    # A ministry system pushes its own JSON, shaped as its mapping file says.
    free = {("post /api/v1/ministries/{system}/results", "request")}
    empty = {(op, where) for op, where, _, media in bodies if not media.get("schema")}
    assert empty == free


class Attachment(BaseModel):
    """The test's own Attachment: schemas.canonical names one too."""

    size: int


class Part(BaseModel):
    size: int


class Widget(BaseModel):
    """A widget."""

    parts: list[Part]


class _Models(Connector):
    name = "models"

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def openapi(self) -> dict[str, Any]:
        return {"/api/v1/models": {"get": operation("A model", self.model)}}


def test_a_fragments_models_become_components() -> None:
    doc = openapi_document((*built_in(), _Models(Widget)))
    reply = doc["paths"]["/api/v1/models"]["get"]["responses"]["200"]
    assert reply["description"] == "A widget"
    assert reply["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Widget"}
    assert {"Widget", "Part"} <= set(doc["components"]["schemas"])


def test_two_models_with_one_name_are_refused() -> None:
    with pytest.raises(DuplicateModel, match="Attachment"):
        openapi_document((*built_in(), _Models(Attachment)))


def test_a_fragment_of_plain_schemas_still_plugs_in() -> None:
    plain = {"/api/v1/plain": {"get": operation("Plain", content(None), answer="anything")}}

    class Plain(Connector):
        name = "plain"

        def openapi(self) -> dict[str, Any]:
            return plain

    doc = openapi_document((*built_in(), Plain()))
    assert doc["paths"]["/api/v1/plain"]["get"]["responses"]["200"]["description"] == "anything"


def test_a_fragment_may_not_take_a_documented_path() -> None:
    class Thief(Connector):
        name = "thief"

        def openapi(self) -> dict[str, Any]:
            return {"/api/v1/dossier-events": {}}

    with pytest.raises(ValueError, match="already documented"):
        openapi_document((*built_in(), Thief()))
