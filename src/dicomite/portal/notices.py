"""Messages shown after a form redirects back (POST → 303 → GET). The query string carries only
a key from this table, so no text from the URL is ever echoed into a page."""

from __future__ import annotations

NOTICES = {
    "registered": "Successfully created the application.",
    "deleted": "Successfully deleted the application.",
    "permission-added": "Permissions added.",
    "permission-removed": "Permission removed.",
    "consent-granted": "Successfully granted admin consent for the requested permissions.",
    "consent-revoked": "Admin consent revoked.",
    "secret-deleted": "Client secret deleted.",
    "certificate-added": "Certificate uploaded.",
    "certificate-deleted": "Certificate deleted.",
    "federated-added": "Federated credential added.",
    "federated-deleted": "Federated credential deleted.",
    "api-updated": "Saved.",
    "redirect-uri-added": "Redirect URI added.",
    "redirect-uri-removed": "Redirect URI removed.",
    "authentication-saved": "Saved.",
    "scope-saved": "Scope saved.",
    "scope-deleted": "Scope deleted.",
    "app-role-saved": "App role saved.",
    "app-role-deleted": "App role deleted.",
    "user-created": "User created.",
    "user-updated": "User updated.",
    "password-reset": "Password reset. The user's sessions were signed out.",
    "user-enabled": "Account enabled. The user can sign in again.",
    "user-disabled": "Account disabled. The user's sessions were signed out.",
    "user-deleted": "User deleted.",
    "consent-settings-saved": "User consent settings saved.",
    "study-deleted": "Study deleted.",
    "signed-out": "You signed out.",
}


def text(key: str) -> str:
    return NOTICES.get(key, "")
