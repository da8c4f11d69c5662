// The issuer's own process: harness.mjs forks it and sends its settings over
// the IPC channel, so that stop() truly closes the port (the test can then
// start a new issuer on the same port with other keys, as a rotation would).
// Not meant to be run by hand.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

// The scopes the service knows (issue 21); every one is granted by the issuer.
export const SERVICE_SCOPES = 'uploads:read uploads:write uploads:delete webhooks:manage audit:read';

function clients({ redirectUris }) {
  const list = [{
    client_id: 'ci-client',
    client_secret: 'ci-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SERVICE_SCOPES,
  }];
  // A client with the authorization_code grant must have a redirect URI, so
  // the browser's client exists only when a test names where to send it back.
  if (redirectUris.length > 0) {
    list.push({
      client_id: 'example-frontend',
      application_type: 'web',
      token_endpoint_auth_method: 'none', // public: PKCE (S256) is then required
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      scope: `openid ${SERVICE_SCOPES}`,
    });
  }
  return list;
}

function configuration({ audience, keys, redirectUris, corsOrigins }) {
  const signingAlg = keys[0].alg;
  return {
    jwks: { keys },
    clients: clients({ redirectUris }),
    scopes: ['openid', ...SERVICE_SCOPES.split(' ')],
    // ID tokens too are signed with the first key, so a set of EC keys alone works.
    clientDefaults: { id_token_signed_response_alg: signingAlg },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clientBasedCORS(_ctx, origin, _client) {
      return corsOrigins.includes(origin);
    },
    // A user who signs in with an email address as login gets it as a claim,
    // so the service (AUTH_CREATE_USERS) can record it.
    async extraTokenClaims(_ctx, token) {
      if (token.accountId && token.accountId.includes('@')) return { email: token.accountId };
      return undefined;
    },
    features: {
      devInteractions: { enabled: true }, // any login and password: for CI only
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: SERVICE_SCOPES,
          audience,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: signingAlg } },
        }),
      },
    },
  };
}

process.once('message', (settings) => {
  const url = `http://127.0.0.1:${settings.port}`;
  const provider = new Provider(url, configuration(settings));
  if (settings.latencyMs > 0) {
    // An issuer across a network: every answer comes latencyMs late.
    provider.use(async (_ctx, next) => {
      await new Promise((resolve) => setTimeout(resolve, settings.latencyMs));
      await next();
    });
  }
  const server = createServer(provider.callback());
  server.on('error', (err) => {
    process.send({ error: err.message }, () => process.exit(1));
  });
  server.listen(settings.port, '127.0.0.1', () => process.send({ ready: url }));
});

// The test process went away (or called stop): nothing should outlive it.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
