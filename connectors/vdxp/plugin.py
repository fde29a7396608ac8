"""The `vdxp` connector (the national document axis): its send queue and sender, the intake
that polls the axis, the transfer desk, the axis API and its dashboard page."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.vdxp.agencies import AgencyDirectory
from connectors.vdxp.api import VdxpApi
from connectors.vdxp.client import CONNECTOR, AxisClient
from connectors.vdxp.config import VdxpConfig
from connectors.vdxp.dashboard import vdxp_flow
from connectors.vdxp.intake import AxisIntake
from connectors.vdxp.mapping import StatusPolicy
from connectors.vdxp.outbound import SendSink, TransferDesk, lane_of
from connectors.vdxp.store import SEND_ROUTING_KEY, SqliteVdxp
from hub.config import HubConfig
from hub.files import private_dir
from hub.intake import Intake
from hub.plugins import Connector, ConnectorContext
from hub.store.sqlite import SqliteStore
from hub.subscribers import destination_problems
from schemas.interagency import DOCUMENT_EVENT, STATUS_EVENT


@dataclass(frozen=True)
class Axis:
    config: VdxpConfig
    client: AxisClient
    intake: AxisIntake
    desk: TransferDesk


class Vdxp(Connector):
    name = CONNECTOR
    config_model = VdxpConfig
    migrations = "connectors.vdxp"
    locale = "connectors.vdxp"
    page = "vdxp"

    def check(self, section: VdxpConfig, config: HubConfig) -> list[tuple[tuple[str, ...], str]]:
        if not section.enabled:
            return []
        where = ("connectors", CONNECTOR, "deliver_to")
        keys = (DOCUMENT_EVENT, STATUS_EVENT)
        return destination_problems(config.subscribers, section.deliver_to, keys, where, "vdxp.#")

    def load(self, section: VdxpConfig, config: Any, deep: bool) -> StatusPolicy | None:
        if not section.enabled:
            return None
        return StatusPolicy.load(config.mappings_dir / f"{section.mapping}.yaml")

    def store_slices(self, store: SqliteStore) -> dict[str, Any]:
        return {"vdxp": SqliteVdxp(store)}

    def describe(self, section: VdxpConfig) -> list[str]:
        if not section.enabled:
            return []
        also = [n for n in section.accept_namespaces if n != section.namespace]
        return [
            f"document axis: {section.base_url} as {section.organ_id}, namespace "
            f"{section.namespace}"
            + (f" (also reading {', '.join(also)})" if also else "")
            + f", dates {section.date_format}, attachments {section.attachment_packaging}; "
            f"statuses by mapping {section.mapping}; events to {section.deliver_to}"
        ]

    def queues(self, section: VdxpConfig) -> dict[str, list[float]]:
        return {CONNECTOR: section.delay_tiers_s}

    def openapi(self) -> dict[str, Any]:
        from connectors.vdxp.openapi import paths

        return paths()

    async def start(self, context: ConnectorContext) -> None:
        if context.assets is None:
            context.add_flow(self.page, None)
            return
        axis = axis_parts(
            context.config, context.assets, context.store, context.intake, context.http
        )
        sink = SendSink(axis.client, context.store, axis.config.spool_dir)
        await context.consume(axis.config, [SEND_ROUTING_KEY], sink, lane_of, axis.client.guard)
        context.duty(axis.intake.run_schedule, "poll")
        limit = context.hub_config.http.max_body_bytes
        slice_ = context.store.slice("vdxp", SqliteVdxp)
        api = VdxpApi(context.auth, axis.config, slice_, axis.client, axis.desk, axis.intake, limit)
        context.add_routes(api.routes())
        context.expose("axis", axis)
        context.add_flow(
            self.page,
            lambda reader: vdxp_flow(
                reader.slice("vdxp", SqliteVdxp), axis.intake, axis.client.guard
            ),
        )


def axis_parts(
    config: VdxpConfig,
    policy: StatusPolicy,
    store: SqliteStore,
    intake: Intake,
    http: aiohttp.ClientSession,
) -> Axis:
    """The axis's client, intake and transfer desk, sharing one agency directory. Files a
    stopped run left half-written in the spool (downloads, staged uploads) are removed. The
    spool folder is made (or set) 0700: nothing under it is reachable by other users."""
    private_dir(config.spool_dir, tighten=True)  # attachments: the hub's user's alone
    for leftover in ("incoming", "staging"):
        shutil.rmtree(config.spool_dir / leftover, ignore_errors=True)
    client = AxisClient(config, http)
    codec = config.codec()
    agencies = AgencyDirectory(client, config.agencies_refresh_s)
    return Axis(
        config=config,
        client=client,
        intake=AxisIntake(client, config, codec, store, intake.relay, agencies, policy),
        desk=TransferDesk(config, codec, store, intake.relay, agencies),
    )


connector = Vdxp()
