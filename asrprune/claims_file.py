"""The claims YAML file (config/claims.yaml): its claims, named pools and family-wise policy, read
strictly (asrprune.strict_yaml) and checked (asrprune.claims)."""

from __future__ import annotations

from pathlib import Path

from asrprune.claims import Claim, Policy, parse_claims, parse_policy
from asrprune.strict_yaml import load_yaml


def load_claims_file(path: str | Path) -> tuple[list[Claim], dict[str, list[str]]]:
    """The claims and named pools of a claims file (refusing duplicate keys and aliases)."""
    return parse_claims(load_yaml(path), where=str(path))


def load_policy(path: str | Path) -> Policy:
    """The family-wise policy (`multiplicity:`) a claims file declares."""
    return parse_policy(load_yaml(path), where=str(path))
