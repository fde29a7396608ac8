"""SOAP 1.1 on the wire for the ministry simulators: hardened parsing, dict ⇄ XML, envelopes.

`parse_envelope` reads a request the way a careful server does (no DTD, no entities, no
network, no huge trees) and `body_payload` turns the Body's first element into the plain dict
a handler gets; `envelope` and `fault_envelope` write replies; `username_token` reads the
WS-Security UsernameToken; `WsdlInfo` reads what the server core needs from a WSDL file.
The wrong side of the wire lives here too: `SimFaults`, the fault modes a simulator is set
to, and `broken_reply`, what the reply modes send instead of the true reply.

It belongs to the simulators, which play external systems: it must never import hub code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal, get_args

from lxml import etree

from sims.loopback import apply_changes, parse_count, parse_seconds

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
WSS_2004 = "http://docs.oasis-open.org/wss/2004/01"
WSSE_NS = f"{WSS_2004}/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = f"{WSS_2004}/oasis-200401-wss-username-token-profile-1.0#PasswordText"
FAULT_CODES = ("VersionMismatch", "MustUnderstand", "Client", "Server")
CONTENT_TYPE = "text/xml; charset=utf-8"
# Refused before parsing: a DTD is how entity-expansion and external-entity attacks arrive.
FORBIDDEN_MARKUP = (b"<!DOCTYPE", b"<!ENTITY")


class SoapFault(Exception):
    """A SOAP 1.1 Fault to answer with: `code` is Client, Server, MustUnderstand or
    VersionMismatch (an optional `soap:` prefix is dropped), `string` the faultstring."""

    def __init__(self, code: str, string: str) -> None:
        local = code.removeprefix("soap:")
        if local not in FAULT_CODES:
            raise ValueError(f"fault code must be one of {list(FAULT_CODES)}, got {code!r}")
        super().__init__(f"soap:{local}: {string}")
        self.code, self.string = local, string


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
    )


def parse_xml(data: bytes) -> etree._Element:
    """`data` parsed hardened; raises SoapFault (Client) on a DTD, an entity or bad XML."""
    upper = data.upper()
    if any(marker in upper for marker in FORBIDDEN_MARKUP):
        raise SoapFault("Client", "DTD and entity declarations are not accepted")
    try:
        return etree.fromstring(data, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Client", f"the request is not well-formed XML: {exc}") from None


def parse_envelope(data: bytes) -> etree._Element:
    """The first element of a SOAP 1.1 request's Body; raises SoapFault when there is none."""
    root = parse_xml(data)
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        if etree.QName(root).localname == "Envelope":
            raise SoapFault("VersionMismatch", "only SOAP 1.1 envelopes are accepted")
        raise SoapFault("Client", "the request is not a SOAP envelope")
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    elements = [] if body is None else [child for child in body if isinstance(child.tag, str)]
    if not elements:
        raise SoapFault("Client", "the SOAP Body is empty")
    return elements[0]


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def namespace(element: etree._Element) -> str | None:
    return etree.QName(element).namespace


# -- XML → dict -----------------------------------------------------------------------------------


def element_value(element: etree._Element) -> Any:
    """A leaf's text ("" when empty, None when xsi:nil), or a dict of its children."""
    if element.get(XSI_NIL) in ("true", "1"):
        return None
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return element.text or ""
    return element_dict(children)


def element_dict(children: list[etree._Element]) -> dict[str, Any]:
    """Children by local name; a name seen more than once becomes a list, in document order."""
    result: dict[str, Any] = {}
    for child in children:
        name, value = local_name(child), element_value(child)
        if name not in result:
            result[name] = value
        elif isinstance(result[name], list):
            result[name].append(value)
        else:
            result[name] = [result[name], value]
    return result


def body_payload(element: etree._Element) -> dict[str, Any]:
    """The request element as a handler sees it: always a dict, {} when it is empty."""
    return element_dict([child for child in element if isinstance(child.tag, str)])


# -- dict → XML -----------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as SOAP text: {value!r}")


def _append(parent: etree._Element, tag: str, value: object, ns: str) -> None:
    if value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, list | tuple):
                raise TypeError(f"{tag}: a list may not contain lists")
            _append(parent, tag, item, ns)
        return
    child = etree.SubElement(parent, f"{{{ns}}}{tag}")
    if isinstance(value, dict):
        fill(child, value, ns)
    else:
        child.text = _text(value)


def fill(element: etree._Element, data: dict[str, Any], ns: str) -> etree._Element:
    """Write `data` under `element`, every child qualified with `ns`, in the dict's order
    (which must be the schema's sequence order): lists repeat, None is left out."""
    for tag, value in data.items():
        _append(element, tag, value, ns)
    return element


# -- envelopes ------------------------------------------------------------------------------------


def _envelope_root(nsmap: dict[str | None, str]) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soap": SOAP_ENV_NS, **nsmap})
    return root, etree.SubElement(root, f"{{{SOAP_ENV_NS}}}Body")


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def response_element(tag: str, data: dict[str, Any], ns: str) -> etree._Element:
    """A detached `{ns}tag` element holding `data` (see `fill`)."""
    return fill(etree.Element(f"{{{ns}}}{tag}", nsmap={"tns": ns}), data, ns)


def envelope(payload: etree._Element) -> bytes:
    """A SOAP 1.1 envelope whose Body holds `payload`."""
    root, body = _envelope_root({})
    body.append(payload)
    return _serialize(root)


def fault_envelope(fault: SoapFault) -> bytes:
    root, body = _envelope_root({})
    element = etree.SubElement(body, f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(element, "faultcode").text = f"soap:{fault.code}"
    etree.SubElement(element, "faultstring").text = fault.string
    return _serialize(root)


# -- WS-Security ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str
    password_type: str


def username_token(payload: etree._Element) -> UsernameToken | None:
    """The UsernameToken in the Header of the envelope `payload` belongs to, if any."""
    root = payload.getroottree().getroot()
    token = root.find(f"{{{SOAP_ENV_NS}}}Header/{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken")
    if token is None:
        return None
    username = token.findtext(f"{{{WSSE_NS}}}Username") or ""
    password = token.find(f"{{{WSSE_NS}}}Password")
    if password is None:
        return UsernameToken(username, "", "")
    return UsernameToken(username, password.text or "", password.get("Type", PASSWORD_TEXT))


# -- the WSDL -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WsdlInfo:
    """What the server core needs from its WSDL: the raw document, the target namespace of
    its schema and the names of the schema's top-level elements."""

    document: bytes
    target_namespace: str
    elements: frozenset[str]

    @classmethod
    def read(cls, data: bytes) -> WsdlInfo:
        try:
            root = parse_xml(data)
        except SoapFault as exc:
            raise ValueError(f"unreadable WSDL: {exc.string}") from None
        schemas = root.findall(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
        if not schemas:
            raise ValueError("the WSDL has no inline XML schema")
        schema = schemas[0]
        names = frozenset(
            str(element.get("name")) for element in schema.findall(f"{{{XSD_NS}}}element")
        )
        return cls(data, str(schema.get("targetNamespace", "")), names)

    def with_address(self, url: str) -> bytes:
        """The WSDL with every soap:address location set to `url`."""
        root = parse_xml(self.document)
        for ns in (WSDL_SOAP_NS, WSDL_SOAP12_NS):
            for address in root.iter(f"{{{ns}}}address"):
                address.set("location", url)
        return _serialize(root)


# -- fault modes ----------------------------------------------------------------------------------

Mode = Literal[
    "ok", "http_503", "timeout", "slow", "soap_fault_client", "soap_fault_server",
    "invalid_xml", "entity_reply", "oversized_reply", "wsdl_mismatch",
]  # fmt: skip
MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_OVERSIZED_BYTES = 6 * 1024 * 1024


def _parse_mode(value: object) -> Mode:
    if value not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {value!r}")
    return value


_FAULT_PARSERS: dict[str, Callable[[object], object]] = {
    "mode": _parse_mode,
    "count": parse_count,
    "delay_s": parse_seconds,
    "timeout_sleep_s": parse_seconds,
    "oversized_bytes": parse_count,
}


@dataclass
class SimFaults:
    """What goes wrong with SOAP POSTs (the WSDL and `_sim` endpoints are never faulted).

    - "ok": answer normally;
    - "http_503": HTTP 503, plain text, nothing processed;
    - "timeout": wait `timeout_sleep_s`, process nothing, then HTTP 504;
    - "slow": wait `delay_s`, then answer normally;
    - "soap_fault_client" / "soap_fault_server": a soap:Client / soap:Server fault, nothing
      processed;
    - "invalid_xml": process the request, then answer HTTP 200 with a body that is not XML;
    - "entity_reply": process, then answer with a DTD of nested entities (billion laughs);
    - "oversized_reply": process, then answer the true reply padded past `oversized_bytes`
      with an XML comment (well-formed, only too big);
    - "wsdl_mismatch": process, then answer `<Operation>KetQuaLa` (not in the WSDL) whose
      first child is undeclared too.
    The reply modes bend only replies the service would have given with HTTP 200; a request
    refused with a SOAP fault still gets its fault. `count` is how many SOAP POSTs get the
    fault before `mode` goes back to "ok"; 0 keeps it until changed.
    """

    mode: Mode = "ok"
    count: int = 0
    delay_s: float = 0.5
    timeout_sleep_s: float = 30.0
    oversized_bytes: int = DEFAULT_OVERSIZED_BYTES

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the fields present in `changes`; all or nothing (raises ValueError)."""
        apply_changes(self, changes, _FAULT_PARSERS)

    def take(self) -> Mode:
        """The mode for one SOAP POST, counting it against `count`."""
        mode = self.mode
        if mode != "ok" and self.count > 0:
            self.count -= 1
            if self.count == 0:
                self.mode = "ok"
        return mode


# -- broken replies -------------------------------------------------------------------------------


NOT_XML = b"HTTP/1.1 internal error: java.lang.NullPointerException at DkkdService.process\n"


def entity_reply(ns: str) -> bytes:
    """A reply declaring nested entities ("billion laughs"): harmless only to a parser that
    refuses DTDs or does not expand entities."""
    levels = [
        '<!ENTITY lol0 "lol">',
        *(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)),
    ]
    dtd = f"<!DOCTYPE lolz [\n{chr(10).join(levels)}\n]>"
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{dtd}\n'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body>'
        f'<tns:MaLoi xmlns:tns="{ns}">&lol9;</tns:MaLoi>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def padded(reply: bytes, size_bytes: int) -> bytes:
    """`reply` followed by an XML comment that takes it past `size_bytes`: still valid XML,
    only too big."""
    filler = max(size_bytes - len(reply), 0) + 1
    return reply + b"\n<!--" + b"x" * filler + b"-->\n"


def mismatched(payload: etree._Element, ns: str) -> etree._Element:
    """`payload` renamed to an element the WSDL does not declare (`NopHoSoResponse` →
    `NopHoSoKetQuaLa`), with an undeclared first child: what a ministry that changed its
    schema without notice answers."""
    name = local_name(payload).removesuffix("Response")
    renamed = etree.Element(f"{{{ns}}}{name}KetQuaLa", nsmap={"tns": ns})
    etree.SubElement(renamed, f"{{{ns}}}PhienBanLuocDo").text = "2"
    renamed.extend(list(payload))  # a copy: appending moves a child out of `payload`
    return renamed


def broken_reply(mode: Mode, reply: etree._Element, ns: str, oversized_bytes: int) -> bytes | None:
    """What a reply mode sends instead of the true `reply` (None: send it as it is)."""
    if mode == "invalid_xml":
        return NOT_XML
    if mode == "entity_reply":
        return entity_reply(ns)
    if mode == "wsdl_mismatch":
        return envelope(mismatched(reply, ns))
    if mode == "oversized_reply":
        return padded(envelope(reply), oversized_bytes)
    return None
