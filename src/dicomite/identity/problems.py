"""Errors of the directory's domain rules, shared by the management API, CLI and portal.

Exception tree::

    DirectoryProblem   a rule said no; ``message`` is safe to show to the caller
    ├── InvalidInput   malformed, or breaks a rule     Graph: 400 Request_BadRequest
    │   ├── UnverifiedIdentifierUri                    Graph: 400 HostNameNotOnVerifiedDomain
    │   └── InvalidFederatedCredential         Graph: 400 InvalidFederatedIdentityCredentialValue
    ├── NotFound       no such object in the tenant    Graph: 404 Request_ResourceNotFound
    ├── Conflict       the value is already taken      Graph: 400 Request_BadRequest
    │   └── FederatedCredentialNameTaken   Graph: 409 Request_MultipleObjectsWithSameKeyValue
    └── NotAllowed     the caller may not do this      Graph: 403 Authorization_RequestDenied
"""

from __future__ import annotations


class DirectoryProblem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DirectoryProblem):
    pass


class UnverifiedIdentifierUri(InvalidInput):
    """An identifierUris value outside Entra ID's secure patterns. ``message`` is Graph's
    sentence; ``str()`` adds which forms the application may use, for the portal and the CLI."""

    def __init__(self, uri: str, allowed: str) -> None:
        super().__init__(
            "Values of identifierUris property must use a verified domain of the organization "
            f"or its subdomain: '{uri}'"
        )
        self.allowed = allowed

    def __str__(self) -> str:
        return f"{self.message}. {self.allowed}"


class InvalidFederatedCredential(InvalidInput):
    """A federated identity credential's property breaks a rule: ``prop`` is its Graph name
    (``Name``, ``Issuer``, ``Subject``, ``Audiences``, ``Description``), ``value`` what was
    given; the management API names both, as Graph does."""

    def __init__(self, message: str, prop: str, value: str) -> None:
        super().__init__(message)
        self.prop = prop
        self.value = value


class NotFound(DirectoryProblem):
    @classmethod
    def for_object(cls, object_id: str) -> NotFound:
        """Graph's wording for an unknown object id."""
        return cls(
            f"Resource '{object_id[:80]}' does not exist or one of its queried "
            "reference-property objects are not present."
        )


class Conflict(DirectoryProblem):
    pass


class FederatedCredentialNameTaken(Conflict):
    """Graph's sentence for a second federated identity credential of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"FederatedIdentityCredential with name {name} already exists.")


class NotAllowed(DirectoryProblem):
    pass
