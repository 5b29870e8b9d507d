"""The issuer and subject of common workloads' tokens, built from what a person knows about the
workload (the Azure portal's "federated credential scenarios"), so nobody types a subject by hand.

- GitHub Actions (docs.github.com, "About security hardening with OpenID Connect", example
  subject claims): issuer ``https://token.actions.githubusercontent.com``; subject
  ``repo:{org}/{repo}:environment:{name}``, ``repo:{org}/{repo}:ref:refs/heads/{branch}``,
  ``repo:{org}/{repo}:ref:refs/tags/{tag}`` or ``repo:{org}/{repo}:pull_request``.
- Kubernetes service account tokens (kubernetes.io, "Managing Service Accounts"): issuer the
  cluster's ``--service-account-issuer`` URL; subject
  ``system:serviceaccount:{namespace}:{name}``.
- Any other issuer: issuer and subject as given.

Only the parts are checked here; the credential's own rules (lengths, an https issuer) are
``federated_credentials``'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from dicomite.identity.problems import InvalidInput

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# GitHub: an account name is letters, digits and hyphens (39 at most, no leading hyphen); a
# repository name letters, digits, '.', '-' and '_' (100 at most).
_GITHUB_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")
_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9._-]{1,100}")
# Kubernetes: a namespace is a DNS label (RFC 1123), a service account a DNS subdomain.
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_NAMESPACE = re.compile(_DNS_LABEL)
_SERVICE_ACCOUNT = re.compile(rf"(?=.{{1,253}}$){_DNS_LABEL}(?:\.{_DNS_LABEL})*")


class GitHubEntity(StrEnum):
    """What a workflow's token names: the job's environment, or the branch, tag or pull request
    that ran it."""

    ENVIRONMENT = "environment"
    BRANCH = "branch"
    PULL_REQUEST = "pull_request"
    TAG = "tag"


# The ref prefix of branch and tag subjects; one typed with its prefix is not prefixed again.
_REFS = {GitHubEntity.BRANCH: "refs/heads/", GitHubEntity.TAG: "refs/tags/"}


@dataclass(frozen=True)
class Trust:
    """Whose tokens a federated identity credential accepts."""

    issuer: str
    subject: str


def github_actions(
    organization: str, repository: str, entity: GitHubEntity | str, value: str = ""
) -> Trust:
    """``value`` is the environment, branch or tag name (none for a pull request)."""
    owner = _part(organization, _GITHUB_OWNER, "GitHub organization (or user)")
    repo = _part(repository, _GITHUB_REPOSITORY, "GitHub repository")
    kind = _entity(entity)
    base = f"repo:{owner}/{repo}"
    if kind is GitHubEntity.PULL_REQUEST:
        return Trust(GITHUB_ISSUER, f"{base}:pull_request")
    name = _named(value, kind)
    if kind is GitHubEntity.ENVIRONMENT:
        return Trust(GITHUB_ISSUER, f"{base}:environment:{name}")
    prefix = _REFS[kind]
    return Trust(GITHUB_ISSUER, f"{base}:ref:{name if name.startswith(prefix) else prefix + name}")


def kubernetes(issuer: str, namespace: str, service_account: str) -> Trust:
    """A pod running as ``service_account`` in ``namespace`` of the cluster whose service
    account tokens ``issuer`` signs."""
    space = _part(namespace, _NAMESPACE, "Kubernetes namespace")
    account = _part(service_account, _SERVICE_ACCOUNT, "Kubernetes service account name")
    return Trust(issuer.strip(), f"system:serviceaccount:{space}:{account}")


def other_issuer(issuer: str, subject: str) -> Trust:
    return Trust(issuer.strip(), subject.strip())


def _part(value: str, rule: re.Pattern[str], label: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(f"Enter the {label}.")
    if not rule.fullmatch(text):
        raise InvalidInput(f"'{text[:100]}' is not a valid {label}.")
    return text


def _entity(entity: GitHubEntity | str) -> GitHubEntity:
    try:
        return GitHubEntity(entity)
    except ValueError:
        choices = ", ".join(kind.value for kind in GitHubEntity)
        raise InvalidInput(f"Choose a GitHub entity type: {choices}.") from None


def _named(value: str, kind: GitHubEntity) -> str:
    """An environment, branch or tag name: required, without spaces at its ends (branch and
    tag names hold none at all: git refuses them)."""
    label = f"GitHub {kind.value} name"
    text = value.strip()
    if not text:
        raise InvalidInput(f"Enter the {label}.")
    refs_with_space = kind is not GitHubEntity.ENVIRONMENT and any(c.isspace() for c in text)
    if refs_with_space or any(ord(c) < 32 for c in text):
        raise InvalidInput(f"'{text[:100]}' is not a valid {label}.")
    return text
