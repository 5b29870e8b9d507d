"""``dicomite app federated add|list|remove``."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli

GITHUB = "https://token.actions.githubusercontent.com"


@pytest.mark.parametrize(
    ("options", "issuer", "subject"),
    [
        (
            ["--github", "contoso/imaging", "--environment", "prod"],
            GITHUB,
            "repo:contoso/imaging:environment:prod",
        ),
        (
            ["--github", "contoso/imaging", "--branch", "main"],
            GITHUB,
            "repo:contoso/imaging:ref:refs/heads/main",
        ),
        (
            ["--github", "contoso/imaging", "--tag", "v1"],
            GITHUB,
            "repo:contoso/imaging:ref:refs/tags/v1",
        ),
        (
            ["--github", "contoso/imaging", "--pull-request"],
            GITHUB,
            "repo:contoso/imaging:pull_request",
        ),
        (
            [
                "--kubernetes",
                "https://oidc.cluster.example/x/",
                "--namespace",
                "imaging",
                "--service-account",
                "uploader",
            ],
            "https://oidc.cluster.example/x/",
            "system:serviceaccount:imaging:uploader",
        ),
        (
            ["--issuer", "https://idp.example", "--subject", "workload-7"],
            "https://idp.example",
            "workload-7",
        ),
    ],
)
def test_add_builds_the_subject_of_each_scenario(
    cli: Cli, options: list[str], issuer: str, subject: str
) -> None:
    app = cli.create()["appId"]
    added = cli.json("app", "federated", "add", app, "deploy", *options, "--description", "CI")
    assert set(added) == {"id", "name", "issuer", "subject", "audiences", "description"}
    assert (added["issuer"], added["subject"]) == (issuer, subject)
    assert added["audiences"] == ["api://AzureADTokenExchange"]
    assert cli.json("app", "federated", "list", app) == [added]


def test_list_shows_a_table_and_remove_takes_an_id_or_a_name(cli: Cli) -> None:
    app = cli.create()["appId"]
    assert "No federated credentials." in cli.ok("app", "federated", "list", app).stdout
    first = cli.ok("app", "federated", "add", app, "first", "--github", "o/r", "--branch", "main")
    assert "repo:o/r:ref:refs/heads/main" in first.stdout and "added" in first.stdout
    second = cli.json(
        "app",
        "federated",
        "add",
        app,
        "second",
        "--issuer",
        "https://idp.example",
        "--subject",
        "s",
        "--audience",
        "custom",
    )
    assert second["audiences"] == ["custom"]
    table = cli.ok("app", "federated", "list", app).stdout
    assert "Federated credentials" in table and "second" in table and second["id"] in table
    cli.ok("app", "federated", "remove", app, "FIRST")
    cli.ok("app", "federated", "remove", app, second["id"])
    assert cli.json("app", "federated", "list", app) == []
    assert "does not exist" in cli.fails("app", "federated", "remove", app, "first")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--github", "contoso/imaging"], "give one of --environment, --branch"),
        (["--github", "o/r", "--branch", "a", "--tag", "b"], "give one of --environment, --branch"),
        ([], "Give one of --github, --kubernetes or --issuer"),
        (["--github", "o/r", "--pull-request", "--issuer", "https://x.example"], "Give one of"),
    ],
)
def test_scenario_options_that_do_not_add_up_are_usage_errors(
    cli: Cli, options: list[str], words: str
) -> None:
    app = cli.create()["appId"]
    assert words in cli.fails("app", "federated", "add", app, "deploy", *options, code=2)
    assert cli.json("app", "federated", "list", app) == []


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        (
            "no",
            ["--github", "o/r", "--pull-request"],
            "Federated identity credential name 'no' is invalid",
        ),
        ("deploy", ["--github", "o", "--pull-request"], "Enter the GitHub repository"),
        (
            "deploy",
            ["--kubernetes", "https://k.example", "--namespace", "NS", "--service-account", "sa"],
            "not a valid Kubernetes namespace",
        ),
        ("deploy", ["--issuer", "http://idp.example", "--subject", "s"], "must be an https URL"),
        (
            "deploy",
            ["--issuer", "https://idp.example", "--subject", "s" * 601],
            "at most 600 characters",
        ),
    ],
)
def test_the_domain_refuses_what_breaks_its_rules(
    cli: Cli, name: str, options: list[str], words: str
) -> None:
    app = cli.create()["appId"]
    assert words in cli.fails("app", "federated", "add", app, name, *options)
    assert cli.json("app", "federated", "list", app) == []


def test_a_taken_name_is_refused(cli: Cli) -> None:
    app = cli.create()["appId"]
    cli.ok("app", "federated", "add", app, "deploy", "--github", "o/r", "--pull-request")
    refused = cli.fails("app", "federated", "add", app, "Deploy", "--github", "o/r", "--tag", "v1")
    assert "FederatedIdentityCredential with name Deploy already exists." in refused
