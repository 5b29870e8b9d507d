"""``dicomite app federated …``: federated credentials, built from the same scenarios as the
portal's (``identity.federated_scenarios``): a GitHub Actions repository, a Kubernetes service
account, or an issuer and subject given as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from dicomite.cli.shared import (
    AppRef,
    AsJson,
    DatabaseUrl,
    DataDir,
    deployment,
    escape,
    find_app,
    find_app_to_change,
    id_column,
    print_json,
    say,
    show_rows,
)
from dicomite.clock import utcnow
from dicomite.graph import serialize
from dicomite.identity import federated_credentials as federated
from dicomite.identity import federated_scenarios as scenarios
from dicomite.identity.federated_scenarios import GitHubEntity, Trust

federated_app = typer.Typer(
    help="Federated credentials: tokens of another issuer that sign in as the application.",
    no_args_is_help=True,
)

Text = str | None


def credentials_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        "name",
        Column("issuer", overflow="fold"),
        Column("subject", overflow="fold"),
        "description",
        id_column("ID"),
        title="Federated credentials",
    )
    for row in rows:
        cells = (row["name"], row["issuer"], row["subject"], row["description"] or "")
        table.add_row(*(escape(cell) for cell in cells), row["id"])
    return table


@dataclass(frozen=True)
class Scenario:
    """The add command's scenario options: --github, --kubernetes or --issuer (exactly one)."""

    github: Text = None
    environment: Text = None
    branch: Text = None
    tag: Text = None
    pull_request: bool = False
    kubernetes: Text = None
    namespace: Text = None
    service_account: Text = None
    issuer: Text = None
    subject: Text = None

    def trust(self) -> Trust:
        named = [n for n in (self.github, self.kubernetes, self.issuer) if n is not None]
        if len(named) != 1:
            raise typer.BadParameter("Give one of --github, --kubernetes or --issuer.")
        if self.github is not None:
            return self._github(self.github)
        if self.kubernetes is not None:
            account = self.service_account or ""
            return scenarios.kubernetes(self.kubernetes, self.namespace or "", account)
        return scenarios.other_issuer(self.issuer or "", self.subject or "")

    def _github(self, repository: str) -> Trust:
        """``ORG/REPO`` with exactly one of the entity options."""
        chosen = {
            GitHubEntity.ENVIRONMENT: self.environment,
            GitHubEntity.BRANCH: self.branch,
            GitHubEntity.TAG: self.tag,
            GitHubEntity.PULL_REQUEST: "" if self.pull_request else None,
        }
        given = [(entity, value) for entity, value in chosen.items() if value is not None]
        if len(given) != 1:
            raise typer.BadParameter(
                "With --github, give one of --environment, --branch, --tag or --pull-request."
            )
        organization, _, name = repository.partition("/")
        [(entity, value)] = given
        return scenarios.github_actions(organization, name, entity, value)


@federated_app.command("add")
def add(
    app: AppRef,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="3-120 letters, digits, '-', '_'; unchangeable")
    ],
    github: Annotated[
        Text, typer.Option("--github", metavar="ORG/REPO", help="GitHub Actions")
    ] = None,
    environment: Annotated[Text, typer.Option("--environment", help="… its environment")] = None,
    branch: Annotated[Text, typer.Option("--branch", help="… a branch")] = None,
    tag: Annotated[Text, typer.Option("--tag", help="… a tag")] = None,
    pull_request: Annotated[bool, typer.Option("--pull-request", help="… pull requests")] = False,
    kubernetes: Annotated[
        Text, typer.Option("--kubernetes", metavar="ISSUER_URL", help="A cluster's issuer")
    ] = None,
    namespace: Annotated[Text, typer.Option("--namespace", help="… the pod's namespace")] = None,
    service_account: Annotated[
        Text, typer.Option("--service-account", help="… its service account")
    ] = None,
    issuer: Annotated[Text, typer.Option("--issuer", help="Any other issuer (URL)")] = None,
    subject: Annotated[Text, typer.Option("--subject", help="… and the subject, exactly")] = None,
    audience: Annotated[str, typer.Option("--audience")] = federated.DEFAULT_AUDIENCE,
    description: Annotated[Text, typer.Option("--description", help="What it is for")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Trust the tokens of one workload: a GitHub Actions repository (--github), a Kubernetes
    service account (--kubernetes), or any issuer and subject (--issuer, --subject)."""
    scenario = Scenario(
        github,
        environment,
        branch,
        tag,
        pull_request,
        kubernetes,
        namespace,
        service_account,
        issuer,
        subject,
    )
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        built = scenario.trust()
        credential = federated.add_federated_credential(
            session,
            find_app_to_change(session, context, app),
            utcnow(),
            name=name,
            issuer=built.issuer,
            subject=built.subject,
            audiences=[audience],
            description=description,
        )
        row = serialize.federated_identity_credential(credential)
    if as_json:
        print_json(row)
        return
    say(f"Federated credential '{escape(row['name'])}' added.")
    say(f"  Issuer:  {escape(row['issuer'])}")
    say(f"  Subject: {escape(row['subject'])}")
    say(f"  ID:      {row['id']}")


@federated_app.command("list")
def list_credentials(
    app: AppRef, as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """The application's federated credentials."""
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        application = find_app(session, context, app)
        held = federated.federated_credentials_of(session, application)
        rows = [serialize.federated_identity_credential(c) for c in held]
    show_rows(rows, as_json, credentials_table, "No federated credentials.")


@federated_app.command("remove")
def remove(
    app: AppRef,
    credential: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="Its id or name")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete a federated credential: its tokens no longer sign in as the application."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        federated.remove_federated_credential(
            session, find_app_to_change(session, context, app), credential
        )
    say(f"Federated credential {escape(credential)} removed.")
