"""The subjects the portal and the CLI build for GitHub Actions and Kubernetes workloads."""

from __future__ import annotations

import pytest

from dicomite.identity.federated_scenarios import (
    GITHUB_ISSUER,
    GitHubEntity,
    Trust,
    github_actions,
    kubernetes,
    other_issuer,
)
from dicomite.identity.problems import InvalidInput


@pytest.mark.parametrize(
    ("entity", "value", "subject"),
    [
        ("environment", "prod", "repo:org/repo:environment:prod"),
        ("branch", "main", "repo:org/repo:ref:refs/heads/main"),
        ("branch", "feature/x", "repo:org/repo:ref:refs/heads/feature/x"),
        ("branch", "refs/heads/main", "repo:org/repo:ref:refs/heads/main"),
        ("pull_request", "", "repo:org/repo:pull_request"),
        ("pull_request", "ignored", "repo:org/repo:pull_request"),
        ("tag", "v1", "repo:org/repo:ref:refs/tags/v1"),
        ("tag", "refs/tags/v1", "repo:org/repo:ref:refs/tags/v1"),
        (GitHubEntity.ENVIRONMENT, " staging area ", "repo:org/repo:environment:staging area"),
    ],
)
def test_github_actions_subjects(entity: str, value: str, subject: str) -> None:
    assert github_actions("org", "repo", entity, value) == Trust(GITHUB_ISSUER, subject)


def test_github_names_keep_their_case() -> None:
    """Entra ID compares subjects case-sensitively, and GitHub writes the names as they are."""
    built = github_actions(" Contoso ", "Imaging.API_v2", "environment", "Prod")
    assert built.subject == "repo:Contoso/Imaging.API_v2:environment:Prod"


@pytest.mark.parametrize(
    ("organization", "repository", "entity", "value", "words"),
    [
        ("", "repo", "branch", "main", "Enter the GitHub organization"),
        ("org", " ", "branch", "main", "Enter the GitHub repository"),
        ("org/team", "repo", "branch", "main", "not a valid GitHub organization"),
        ("-org", "repo", "branch", "main", "not a valid GitHub organization"),
        ("org", "repo:x", "branch", "main", "not a valid GitHub repository"),
        ("org", "a/b", "branch", "main", "not a valid GitHub repository"),
        ("org", "repo", "commit", "abc", "Choose a GitHub entity type"),
        ("org", "repo", "environment", "", "Enter the GitHub environment name"),
        ("org", "repo", "branch", "my branch", "not a valid GitHub branch name"),
        ("org", "repo", "tag", "v1\n2", "not a valid GitHub tag name"),
    ],
)
def test_github_parts_that_cannot_make_a_subject(
    organization: str, repository: str, entity: str, value: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        github_actions(organization, repository, entity, value)


def test_kubernetes_service_account_subject() -> None:
    issuer = "https://oidc.prod-aks.azure.com/tenant/cluster/"
    built = kubernetes(f" {issuer} ", "imaging", "dicom-uploader")
    assert built == Trust(issuer, "system:serviceaccount:imaging:dicom-uploader")
    dotted = kubernetes(issuer, "kube-system", "a.b-c")
    assert dotted.subject == "system:serviceaccount:kube-system:a.b-c"


@pytest.mark.parametrize(
    ("namespace", "account", "words"),
    [
        ("", "sa", "Enter the Kubernetes namespace"),
        ("Imaging", "sa", "not a valid Kubernetes namespace"),
        ("ns:x", "sa", "not a valid Kubernetes namespace"),
        ("n" * 64, "sa", "not a valid Kubernetes namespace"),
        ("ns", "", "Enter the Kubernetes service account name"),
        ("ns", "sa_1", "not a valid Kubernetes service account name"),
        ("ns", "-sa", "not a valid Kubernetes service account name"),
        ("ns", ".".join(["a" * 63] * 4) + "aa", "not a valid Kubernetes service account name"),
    ],
)
def test_kubernetes_names_that_are_not_names(namespace: str, account: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        kubernetes("https://issuer.example", namespace, account)


def test_other_issuer_is_taken_as_given_but_trimmed() -> None:
    assert other_issuer(" https://idp.example ", " workload-7 ") == Trust(
        "https://idp.example", "workload-7"
    )
