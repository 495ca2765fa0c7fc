"""The SSRF rules of api.md, the CloudEvents envelope and the Standard Webhooks
signature, without a server."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from ipt_workflow.application.webhooks import (
    EVENT_TYPES,
    UrlPolicy,
    UrlRefusedError,
    event_types,
    new_secret,
)
from ipt_workflow.domain.errors import InvalidInput
from tests.webhooks.conftest import FakeDns

REFUSED = [
    ("http://hooks.example.org/x", "https"),
    ("ftp://hooks.example.org/x", "https"),
    ("https://10.0.0.1/x", "private"),
    ("https://192.168.0.10/x", "private"),
    ("https://172.16.5.4/x", "private"),
    ("https://127.0.0.1/x", "private"),
    ("https://localhost/x", "private"),
    ("https://[::1]/x", "private"),
    ("https://169.254.169.254/latest/meta-data", "private"),
    ("https://100.64.0.1/x", "private"),
    ("https://0.0.0.0/x", "private"),
    ("https://224.0.0.1/x", "private"),
    ("https://[::ffff:10.0.0.1]/x", "private"),
    ("https://[fd00::1]/x", "private"),
    ("https://internal.example.org/x", "private"),
    ("https://mixed.example.org/x", "private"),
    ("https://user:pw@hooks.example.org/x", "user name"),
    ("https://hooks.example.org/x#frag", "fragment"),
    ("https://unknown.example/x", "does not resolve"),
    ("https:///x", "no host"),
    ("https://hooks.example.org:0/x", "port 0"),
    ("https://hooks.example.org/a b", "spaces"),
    ("https://" + "a" * 2100 + ".org/", "longer"),
    ("not-a-url", "https"),
]


@pytest.fixture
def policy() -> UrlPolicy:
    return UrlPolicy(resolver=FakeDns(public=True))


class TestSubscribeTime:
    @pytest.mark.parametrize(("url", "why"), REFUSED)
    def test_a_url_outside_the_rules_is_refused_saying_why(
        self, policy: UrlPolicy, url: str, why: str
    ) -> None:
        with pytest.raises(UrlRefusedError) as refused:
            policy.check(url)

        assert why in refused.value.reason

    def test_https_to_a_public_name_is_allowed(self, policy: UrlPolicy) -> None:
        target = policy.check("https://Hooks.Example.org:8443/in?token=1")

        assert (target.host, target.port, target.path) == (
            "hooks.example.org",
            8443,
            "/in?token=1",
        )
        assert target.host_header == "hooks.example.org:8443"

    def test_development_mode_allows_http_on_loopback_only(self) -> None:
        dev = UrlPolicy(dev=True, resolver=FakeDns(public=True))

        dev.check("http://127.0.0.1:9000/hook")
        dev.check("http://localhost:9000/hook")
        dev.check("https://[::1]:9000/hook")
        with pytest.raises(UrlRefusedError):
            dev.check("http://hooks.example.org/hook")
        with pytest.raises(UrlRefusedError):
            dev.check("https://10.0.0.1/hook")

    def test_the_allow_list_names_hosts_addresses_or_networks(self) -> None:
        allowing = UrlPolicy(
            allow_hosts="internal.example.org, 192.168.0.0/16,127.0.0.1",
            resolver=FakeDns(public=True),
        )

        allowing.check("http://internal.example.org/hook")
        allowing.check("http://192.168.7.7:8080/hook")
        allowing.check("http://127.0.0.1:9/hook")
        with pytest.raises(UrlRefusedError):
            allowing.check("http://hooks.example.org/hook")
        with pytest.raises(UrlRefusedError):
            allowing.check("https://10.0.0.1/hook")


class TestDeliveryTime:
    def test_a_name_rebound_to_a_private_address_is_refused_before_connecting(
        self,
    ) -> None:
        dns = FakeDns(public=True)
        policy = UrlPolicy(resolver=dns)
        target = policy.check("https://hooks.example.org/hook")

        dns.names["hooks.example.org"] = ["10.9.8.7"]

        with pytest.raises(UrlRefusedError, match=r"10\.9\.8\.7"):
            policy.addresses(target)

    def test_the_request_goes_to_the_checked_address_under_the_name(self) -> None:
        policy = UrlPolicy(resolver=FakeDns(public=True))
        target = policy.target("https://hooks.example.org/hook?x=1")

        [address] = policy.addresses(target)

        assert target.url_for(address) == "https://93.184.215.14:443/hook?x=1"
        assert target.host_header == "hooks.example.org"


class TestEventTypes:
    def test_every_type_is_a_case_event_and_star_stands_alone(self) -> None:
        assert {"CaseOpened", "SessionHeld", "CaseClosed"} <= set(EVENT_TYPES)
        assert "PhaseEvent" not in EVENT_TYPES
        assert event_types(["*"]) == ("*",)
        assert event_types(["SessionHeld", "SessionHeld"]) == ("SessionHeld",)
        for bad in (["*", "SessionHeld"], ["SessionHold"], []):
            with pytest.raises(InvalidInput):
                event_types(bad)


class TestSignature:
    def test_the_reference_library_signs_as_the_specification_computes(self) -> None:
        secret = new_secret()
        key = base64.b64decode(secret.removeprefix("whsec_"))
        at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        body = '{"id":"c:1"}'

        signed = Webhook(secret).sign("c:1", at, body)

        mac = hmac.new(
            key, f"c:1.{int(at.timestamp())}.{body}".encode(), hashlib.sha256
        )
        assert signed == "v1," + base64.b64encode(mac.digest()).decode()
        assert len(key) == 32
