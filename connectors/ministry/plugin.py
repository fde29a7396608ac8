"""The `ministry` connector: each enabled ministry system (section `ministries.<name>`) gets
its client, a hand-off queue when it takes dossiers, a result intake, a poller when its
results are polled and a door when they are pushed; and the ministries API and page."""

from __future__ import annotations

from typing import Any

import click

from connectors.ministry.api import MinistriesApi, System
from connectors.ministry.client import open_client
from connectors.ministry.config import MinistryConfig
from connectors.ministry.dashboard import ministries_flow
from connectors.ministry.intake import ResultIntake
from connectors.ministry.mapping import MinistryMapping, load_for
from connectors.ministry.poller import ResultPoller
from connectors.ministry.routes import PushEntry, ResultsDoor, push_entry
from connectors.ministry.sink import HandoffSink
from connectors.ministry.soap import wsdl_problems
from connectors.ministry.store import SqliteMinistries
from hub.config import HubConfig, SubscriberName
from hub.consumer import dossier_code_of
from hub.errors import ConfigError
from hub.plugins import Connector, ConnectorContext
from hub.store.sqlite import DOSSIER_CHANGED, SqliteStore
from hub.tokens import LEGACY_WARNING, is_legacy


class Ministry(Connector):
    name = "ministry"
    config_key = "ministries"
    config_model = dict[SubscriberName, MinistryConfig]
    migrations = "connectors.ministry"
    locale = "connectors.ministry"
    page = "ministries"

    def default_section(self) -> Any:
        return {}

    def check(
        self, section: dict[str, MinistryConfig], config: HubConfig
    ) -> list[tuple[tuple[str, ...], str]]:
        problems: list[tuple[tuple[str, ...], str]] = []
        for name, ministry in section.items():
            if not ministry.enabled or (ministry.poll is None and ministry.push is None):
                continue
            if not ministry.procedures and not ministry.result_procedures:
                problems.append(
                    (
                        ("ministries", name),
                        "takes results, but may report on no dossier: none is handed to it "
                        "(procedures) and no result_procedures are listed, so every result "
                        "would be refused",
                    )
                )
            key = f"ministry.result.{name}"
            if not any(s.enabled and s.receives(key) for s in config.subscribers.values()):
                problems.append(
                    (
                        ("ministries", name),
                        f"takes results, but no enabled subscriber receives {key}: add "
                        "ministry.# to the one-stop system's events (section subscribers)",
                    )
                )
        return problems

    def warnings(self, section: dict[str, MinistryConfig]) -> list[str]:
        return [
            f"ministries.{name}.push.token_sha256: {LEGACY_WARNING}"
            for name, m in sorted(section.items())
            if m.enabled
            and m.push is not None
            and m.push.token_sha256 is not None
            and is_legacy(m.push.token_sha256.get_secret_value())
        ]

    def load(
        self, section: dict[str, MinistryConfig], config: Any, deep: bool
    ) -> dict[str, MinistryMapping]:
        """Each enabled system's mapping (and, when `deep`, its WSDL file), every problem of
        all at once. The hub itself does not go deep: its SOAP clients read and check each
        WSDL as they start, so it is not parsed twice."""
        out: dict[str, MinistryMapping] = {}
        problems: list[str] = []
        for name, ministry in section.items():
            if not ministry.enabled:
                continue
            try:
                out[name] = load_for(name, ministry, config.mappings_dir)
            except ConfigError as exc:
                problems += exc.problems
            if deep and ministry.kind == "soap":
                mapping = out.get(name)  # the WSDL alone when the mapping has problems
                problems += wsdl_problems(
                    name, ministry, config.mappings_dir, mapping, config.locate
                )
        if problems:
            raise ConfigError(f"{len(problems)} problem(s) with the ministry systems", problems)
        return out

    def store_slices(self, store: SqliteStore) -> dict[str, Any]:
        return {"ministries": SqliteMinistries(store)}

    def describe(self, section: dict[str, MinistryConfig]) -> list[str]:
        lines = []
        for name, ministry in sorted(section.items()):
            if not ministry.enabled:
                continue
            ways = [w for w, on in (("poll", ministry.poll), ("push", ministry.push)) if on]
            lines.append(
                f"ministry {name}: {ministry.kind}, mapping {ministry.mapping}; hands off "
                f"{len(ministry.procedures)} procedure(s); results by "
                f"{' and '.join(ways) or 'none'}"
            )
        return lines

    def watched_names(self, section: dict[str, MinistryConfig]) -> list[str]:
        return [f"ministry.{n}" for n, m in section.items() if m.enabled]

    def queues(self, section: dict[str, MinistryConfig]) -> dict[str, list[float]]:
        # Only hand-offs travel on a ministry's own queues.
        return {f"ministry.{n}": m.delay_tiers_s for n, m in section.items() if m.submit}

    def openapi(self) -> dict[str, Any]:
        from connectors.ministry.openapi import paths

        return paths()

    def commands(self) -> list[click.Command]:
        return []

    async def start(self, context: ConnectorContext) -> None:
        systems: dict[str, System] = {}
        pushes: dict[str, PushEntry] = {}
        slice_ = context.store.slice("ministries", SqliteMinistries)
        for name, mapping in (context.assets or {}).items():
            cfg: MinistryConfig = context.config[name]
            mappings_dir = context.hub_config.mappings_dir
            client = await open_client(
                name, cfg, context.http, mappings_dir, mapping, context.hub_config.locate
            )
            context.on_stop(client.close)
            if cfg.submit is not None:
                sink = HandoffSink(client, cfg, mapping, context.store, slice_)
                await context.consume(
                    cfg,
                    [DOSSIER_CHANGED],
                    sink,
                    dossier_code_of,
                    client.guard,
                    connector=client.connector,
                )
            else:  # poll-only: watched through its guard
                context.watch(client.connector, client.guard)
            results = ResultIntake(
                name,
                mapping,
                context.store,
                context.intake.relay,
                [*cfg.procedures, *cfg.result_procedures],
                context.validator,
            )
            poller = None
            if cfg.poll is not None:
                poller = ResultPoller(client, mapping, results, slice_, cfg.poll)
                context.duty(poller.run_schedule, f"poll-{name}")
            if cfg.push is not None:
                pushes[name] = push_entry(name, cfg.push, mapping, results)
            systems[name] = System(cfg, client, poller)
        limit = context.hub_config.http.max_body_bytes
        context.add_routes(
            [
                *MinistriesApi(context.auth, slice_, systems).routes(),
                *ResultsDoor(pushes, limit).routes(),
            ]
        )
        context.expose("ministries", systems)
        context.add_flow(self.page, (lambda r: _flow(r, systems)) if systems else None)


def _flow(reader: SqliteStore, systems: dict[str, System]) -> Any:
    return ministries_flow(reader.slice("ministries", SqliteMinistries), systems)


connector = Ministry()
