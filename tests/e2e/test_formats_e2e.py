"""XML and CSV end to end: real control-plane and edge processes, real HTTP. A caller POSTs XML
or CSV and gets XML or CSV back, parsed here by independent strict parsers (docs/formats.md)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rns
from tests.e2e.conftest import Running, eventually, mapping, shapes

pytestmark = pytest.mark.e2e

ORDER = b"""<?xml version="1.0" encoding="UTF-8"?>
<order id="42" xmlns:x="urn:acme">
  <line sku="A1"><qty>2</qty></line>
  <line sku="B&amp;2"><qty>5</qty></line>
  <x:note>rush &lt;today&gt;</x:note>
</order>"""

# The XML answer: a receipt with the order's id as an attribute and one <line> per line.
XML_ANSWER = (
    '{receipt: {"@order": payload.order."@id", "@xmlns:x": payload.order."@xmlns:x", '
    'line: payload.order.line[].{"@sku": "@sku", qty: qty}, '
    '"x:note": payload.order."x:note"}}'
)


@pytest.fixture(scope="module")
def world(running: Running):
    api = running.api
    api.company("fmt")
    xml_flow, xml_cb = api.flow_with_callback(
        "fmt",
        "xml",
        shapes(mapping(XML_ANSWER), callback={"render": "xml", "unwrap": True}),
        content_type=cbs.CONTENT_TYPE_XML,
    )
    api.deploy(xml_flow.id)
    csv_flow, csv_cb = api.flow_with_callback(
        "fmt",
        "csv",
        shapes(
            mapping("payload[?to_number(qty) > `1`].{sku: sku, qty: to_number(qty), note: note}"),
            callback={"render": "csv", "unwrap": True},
        ),
        content_type=cbs.CONTENT_TYPE_CUSTOM,
        custom_content_type="text/csv",
    )
    api.deploy(csv_flow.id)
    world = {"xml": xml_cb, "csv": csv_cb}
    for cb in world.values():
        eventually(lambda cb=cb: post(running, cb, b"", "text/plain").status_code != 403)
    return world


def post(running: Running, cb, body: bytes, content_type: str):
    return running.http.post(
        f"/api/v1/{cb.company}/{cb.id}",
        content=body,
        headers={"patchworks-signature": cb.signature, "content-type": content_type},
    )


def test_an_xml_body_is_answered_with_well_formed_xml(running, world):
    response = post(running, world["xml"], ORDER, "application/xml")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    root = ET.fromstring(response.content)  # strict, namespace-aware
    assert root.tag == "receipt"
    assert root.get("order") == "42"
    assert [(line.get("sku"), line.findtext("qty")) for line in root.iter("line")] == [
        ("A1", "2"),
        ("B&2", "5"),
    ]
    assert root.findtext("{urn:acme}note") == "rush <today>"


def test_a_csv_body_is_answered_with_csv(running, world):
    body = b'\xef\xbb\xbfsku,qty,note\r\nA1,2,"big, red"\r\nB2,1,\r\nC3,7,"say ""hi"""\r\n'
    response = post(running, world["csv"], body, "text/csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert rows == [["sku", "qty", "note"], ["A1", "2", "big, red"], ["C3", "7", 'say "hi"']]
    assert response.content.endswith(b"\r\n")


def test_an_unsafe_xml_body_fails_the_run_and_says_why(running, world):
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b"<l>&c;</l>"
    )
    response = post(running, world["xml"], laughs, "text/xml")
    assert response.status_code == 502
    assert response.json()["error"] == "flow_failed"
    run = running.api.runs.GetRun(
        rns.GetRunRequest(id=response.json()["run_id"]), metadata=running.api.md
    ).run
    assert run.status == r.RUN_STATUS_FAILED
    assert "the XML body was refused" in run.error
