// Peer token server for Dicomite's token-throughput benchmark.
//
// node `oidc-provider` 9 configured as close as it allows to what Dicomite's
// token endpoint does for a client-credentials request: one confidential
// client authenticating with client_secret_post, and a JWT access token
// signed RS256 with a 2048-bit key for one resource server.
//
// Usage: node server.mjs [port]   (or PORT=...)
// Env:   BENCH_CLIENT_ID, BENCH_CLIENT_SECRET (required)
//
// Notes:
// - Token endpoint: POST http://127.0.0.1:<port>/token (oidc-provider's default route).
// - Storage is oidc-provider's built-in in-memory adapter. That is fine here:
//   JWT-format access tokens are self-contained, so issuing one never writes
//   to the adapter; nothing else in this benchmark needs persistence.
// - A single node process (no cluster), so it uses one core for JS work.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const RESOURCE = 'https://dicom.healthcareapis.azure.com';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

function parsePort() {
  const raw = process.argv[2] ?? process.env.PORT;
  const port = Number.parseInt(raw ?? '', 10);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`usage: node server.mjs <port> (got ${raw})`);
    process.exit(2);
  }
  return port;
}

// A fresh RS256 signing key per start, like a new deployment; 2048 bits to
// match the key size Dicomite signs with, so both pay the same RSA cost.
function generateSigningJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg: 'RS256', use: 'sig', kid: randomBytes(8).toString('hex') };
}

function buildConfiguration(clientId, clientSecret) {
  return {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        // Same credential shape as the Dicomite request: secret in the form body.
        token_endpoint_auth_method: 'client_secret_post',
        // No client `scope` allow-list: the resource server below grants 'read'.
      },
    ],
    jwks: { keys: [generateSigningJwk()] },
    // Random cookie keys silence the "insecure default" warning; cookies are
    // never used by the client-credentials grant.
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // One hour like Entra ID / Dicomite; stated explicitly to skip oidc-provider's
    // "default ttl function called" notice on the first token.
    ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600 },
    features: {
      // Turn off the interactive dev login pages; only the token endpoint matters.
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Requests that name no `resource` still get a JWT for the DICOM audience.
        defaultResource: async () => RESOURCE,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: 'read',
            audience: RESOURCE,
            accessTokenTTL: 60 * 60,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  };
}

function main() {
  const port = parsePort();
  const clientId = requiredEnv('BENCH_CLIENT_ID');
  const clientSecret = requiredEnv('BENCH_CLIENT_SECRET');
  const issuer = `http://${HOST}:${port}`;

  const provider = new Provider(issuer, buildConfiguration(clientId, clientSecret));
  // Trust X-Forwarded-* like a deployment behind a proxy would; harmless on loopback.
  provider.proxy = true;

  const server = provider.listen(port, HOST, () => {
    console.log(`oidc-provider listening on ${issuer} (token endpoint ${issuer}/token)`);
  });

  // Exit promptly on the harness's SIGTERM/SIGINT so no server outlives a run:
  // stop accepting, drop idle keep-alive sockets, and don't wait more than 2 s.
  const shutdown = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main();
