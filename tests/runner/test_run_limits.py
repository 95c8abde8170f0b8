"""The runner's runs_in_flight limit comes from the company's quota, read at most once per TTL
(runs/limits.py), and the configured defaults come from the environment (config.py)."""

from __future__ import annotations

import pytest

from control_plane.config import Settings
from control_plane.domain import companies, quotas
from control_plane.domain.tenancy import Principal
from control_plane.runs.limits import RunLimits

ADMIN = Principal(key_id="k", company_id=None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_quota_is_cached_for_its_ttl(db):
    company = companies.create_company(ADMIN, "Acme", "acme").id
    clock = Clock()
    limits = RunLimits(ttl_s=5.0, clock=clock)
    assert limits.get(company) is None  # nothing read yet: the driver loads it
    assert limits.load(company) == 50
    quotas.set_quotas(ADMIN, "acme", quotas.Quotas(runs_in_flight=3), ["runs_in_flight"])
    clock.now += 4.9
    assert limits.get(company) == 50  # still the cached value
    clock.now += 0.2
    assert limits.get(company) is None
    assert limits.load(company) == 3
    assert limits.get(company) == 3


def test_the_installation_setting_applies_to_companies_without_their_own(db):
    company = companies.create_company(ADMIN, "Acme", "acme").id
    quotas.set_quotas(ADMIN, "", quotas.Quotas(runs_in_flight=7), ["runs_in_flight"])
    assert RunLimits().load(company) == 7


def test_configured_defaults_come_from_the_environment(db):
    env = {"BOOMERANG_QUOTA_FLOWS": "7", "BOOMERANG_COMPANY_RUNS_IN_FLIGHT": "3"}
    settings = Settings.from_env(env)
    assert (settings.quotas.flows, settings.quotas.runs_in_flight) == (7, 3)
    assert settings.quotas.environments == quotas.Quotas().environments
    # The quota's own name wins over the older one.
    env["BOOMERANG_QUOTA_RUNS_IN_FLIGHT"] = "9"
    assert Settings.from_env(env).quotas.runs_in_flight == 9
    companies.create_company(ADMIN, "Acme", "acme")
    try:
        quotas.configure(settings.quotas)
        assert quotas.get_quotas(ADMIN, "acme").flows == 7
        quotas.set_quotas(ADMIN, "", quotas.Quotas(flows=8), ["flows"])
        assert quotas.get_quotas(ADMIN, "acme").flows == 8
        quotas.set_quotas(ADMIN, "", quotas.Quotas(flows=0), ["flows"])  # 0: reset
        assert quotas.get_quotas(ADMIN, "").flows == 7  # back to the configured default
    finally:
        quotas.configure(quotas.Quotas())


@pytest.mark.parametrize(
    "env",
    [
        {"BOOMERANG_QUOTA_FLOWS": "0"},
        {"BOOMERANG_QUOTA_VERSIONS_KEPT": "1"},
        {"BOOMERANG_QUOTA_RUNS_IN_FLIGHT": "-3"},
        {"BOOMERANG_QUOTA_CALLBACKS": "many"},
    ],
)
def test_bad_configured_defaults_stop_the_start(env):
    with pytest.raises(ValueError, match=next(iter(env))):
        Settings.from_env(env)
