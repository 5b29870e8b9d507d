"""The long-lived objects of one server process, built once from a prepared context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from dicomite.bootstrap import Context
from dicomite.identity.assertions import ReplayGuard
from dicomite.identity.issuance import IssuanceView
from dicomite.identity.keys import KeyRing
from dicomite.identity.oauth2 import TokenService
from dicomite.identity.signins import SignInRecorder


@dataclass
class Services:
    context: Context
    keys: KeyRing
    signins: SignInRecorder
    tokens: TokenService

    @property
    def public_url(self) -> str:
        return self.context.settings.effective_public_url


def build_services(context: Context) -> Services:
    settings = context.settings
    keys = KeyRing(context.store, context.protection)
    signins = SignInRecorder(context.store)
    tokens = TokenService(
        public_url=settings.effective_public_url,
        view=IssuanceView(context.store),
        keys=keys,
        protection=context.protection,
        replay=ReplayGuard(context.store),
        signins=signins,
        lifetime=timedelta(seconds=settings.access_token_lifetime_seconds),
    )
    return Services(context=context, keys=keys, signins=signins, tokens=tokens)
