"""The `national_portal` connector (DVCQG): status pushes on its own queue, the facade the
portal pulls from, the catalogue sync and the procedure API, and their dashboard page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import click

from connectors.national_portal.catalogue import CatalogueClient
from connectors.national_portal.catalogue_mapping import CatalogueCodes
from connectors.national_portal.client import CONNECTOR, PortalClient, PortalSession
from connectors.national_portal.config import NationalPortalConfig
from connectors.national_portal.dashboard import procedures_flow
from connectors.national_portal.mapping import PortalCodes
from connectors.national_portal.procedures.api import ProceduresApi
from connectors.national_portal.procedures.store import SqliteProcedures
from connectors.national_portal.procedures.sync import CatalogueSync
from connectors.national_portal.routes import Facade
from connectors.national_portal.sink import PortalSink
from hub.consumer import dossier_code_of
from hub.intake import Intake
from hub.plugins import Connector, ConnectorContext
from hub.ratelimit import DoorLimiter
from hub.store.sqlite import SqliteStore


@dataclass(frozen=True)
class PortalAssets:
    """The connector's mapping files, read once."""

    portal: PortalCodes
    catalogue: CatalogueCodes


class NationalPortal(Connector):
    name = CONNECTOR
    config_model = NationalPortalConfig
    migrations = "connectors.national_portal"
    locale = "connectors.national_portal"
    page = "procedures"

    def load(self, section: NationalPortalConfig, config: Any, deep: bool) -> PortalAssets:
        folder = config.mappings_dir
        return PortalAssets(
            portal=PortalCodes.load(folder / f"{section.mapping}.yaml"),
            catalogue=CatalogueCodes.load(folder / f"{section.catalogue.mapping}.yaml"),
        )

    def describe(self, section: NationalPortalConfig) -> list[str]:
        if not section.enabled:
            return ["DVCQG: off (the facade still answers the portal's pulls)"]
        catalogue = "on" if section.catalogue.enabled else "off"
        return [
            f"DVCQG: {section.base_url} as {section.madonvi}, mapping {section.mapping}; "
            f"catalogue sync {catalogue}"
        ]

    def watched_names(self, section: NationalPortalConfig) -> list[str]:
        if not section.enabled:
            return []
        return [CONNECTOR, *([f"{CONNECTOR}.catalogue"] if section.catalogue.enabled else [])]

    def warnings(self, section: NationalPortalConfig) -> list[str]:
        if section.enabled and not section.password.get_secret_value():
            return [
                "connectors.national_portal.password is empty: DVCQG will refuse the log-in "
                "(set HUB_CONNECTORS__NATIONAL_PORTAL__PASSWORD)"
            ]
        return []

    def queues(self, section: NationalPortalConfig) -> dict[str, list[float]]:
        return {CONNECTOR: section.delay_tiers_s}

    def store_slices(self, store: SqliteStore) -> dict[str, Any]:
        return {"procedures": SqliteProcedures(store)}

    def commands(self) -> list[click.Command]:
        from connectors.national_portal.procedures.cli import procedures

        return [procedures]

    def openapi(self) -> dict[str, Any]:
        from connectors.national_portal.openapi import paths

        return paths()

    async def start(self, context: ConnectorContext) -> None:
        cfg: NationalPortalConfig = context.config
        assets: PortalAssets = context.assets
        limit = context.hub_config.http.max_body_bytes
        procedures = context.store.slice("procedures", SqliteProcedures)
        catalogue = None
        if cfg.enabled:
            session = PortalSession()  # one account, one session: the flow and the sync
            client = PortalClient(cfg, assets.portal, context.http, session=session)
            sink = PortalSink(client, context.store)
            await context.consume(cfg, ["dossier.#"], sink, dossier_code_of, client.guard)
            if cfg.catalogue.enabled:
                catalogue = catalogue_sync(
                    cfg, assets, context.store, context.intake, context.http, session
                )
                assert isinstance(catalogue.source, CatalogueClient)
                guard = catalogue.source.client.guard
                context.watch(guard.name, guard)
                context.duty(catalogue.run_schedule, "catalogue-schedule")
                context.expose("catalogue", catalogue)
        facade = Facade(
            context.auth,
            context.intake,
            context.store,
            context.validator,
            context.tables,
            limit,
            DoorLimiter("facade", context.hub_config.facade.limits),
        )
        api = ProceduresApi(context.auth, procedures, catalogue, limit)
        context.on_stop(api.close)
        context.add_routes([*facade.routes(context.hub_config.facade.path), *api.routes()])
        context.add_flow(self.page, _flow)


def _flow(reader: SqliteStore) -> Any:
    return procedures_flow(reader.slice("procedures", SqliteProcedures))


def catalogue_sync(
    cfg: NationalPortalConfig,
    assets: PortalAssets,
    store: SqliteStore,
    intake: Intake,
    http: aiohttp.ClientSession,
    session: PortalSession | None = None,
) -> CatalogueSync:
    """The catalogue sync with its own DVCQG client (own rate limit, breaker and outage log),
    on the dossier flow's session when it is given one."""
    ccfg = cfg.catalogue
    client = PortalClient(
        cfg.model_copy(update={"rate_limit_per_s": ccfg.rate_limit_per_s}),
        assets.portal,
        http,
        guard_name=f"{CONNECTOR}.catalogue",
        session=session,
    )
    source = CatalogueClient(client, assets.catalogue, ccfg.agency_code or cfg.madonvi)
    return CatalogueSync(source, store.slice("procedures", SqliteProcedures), intake.relay, ccfg)


connector = NationalPortal()
