"""Each routing policy points to code that runs it: the pointer names what is there, and for a SQL function
the migration whose definition runs (a later migration that redefines it must move the pointer)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

import routing.policies
from routing.policies import POLICIES, Policy, Site

SITES = [site for policy in POLICIES for site in policy.runs_in]


def _text(site: Site) -> str:
    return resources.files(site.package).joinpath(site.resource).read_text()


def test_every_policy_of_the_module_is_listed() -> None:
    named = [value for value in vars(routing.policies).values() if isinstance(value, Policy)]
    assert set(named) == set(POLICIES)


@pytest.mark.parametrize("site", SITES, ids=lambda site: f"{site.resource}:{site.name}")
def test_a_policy_s_site_holds_what_it_names(site: Site) -> None:
    assert site.name in _text(site)


@pytest.mark.parametrize("site", [s for s in SITES if s.resource.endswith(".sql")], ids=lambda site: site.name)
def test_a_policy_s_sql_function_is_named_in_the_migration_that_defines_it_last(site: Site) -> None:
    defines = re.compile(rf"CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+{re.escape(site.name)}\s*\(", re.IGNORECASE)
    migrations = resources.files(site.package).joinpath("migrations")
    definers = sorted(entry.name for entry in migrations.iterdir() if defines.search(entry.read_text()))
    assert definers and f"migrations/{definers[-1]}" == site.resource
