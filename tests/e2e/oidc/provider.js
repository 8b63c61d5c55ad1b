// An OpenID provider for Ferrocore's end-to-end JWT tests (tests/e2e/test_jwt.py), built on
// the `oidc-provider` package: OAuth 2.0 client-credentials access tokens issued as JWTs.
//
//   node provider.js <config.json>
//
// config.json: {"clients": [{"client_id": "sensor1", "client_secret": "...", "roles": ["sensor"]}]}.
// Listens on a free port of 127.0.0.1, issuer http://127.0.0.1:<port>, and prints one JSON line on stdout once it listens:
// {"issuer": "...", "kid": "<the signing key's kid>"}.
//
// Access tokens (POST /token, grant_type=client_credentials, client_secret_basic) are RS256
// JWTs with the client's `roles` claim; the `resource` parameter picks the audience and
// lifetime:
//   urn:ferrocore           aud "ferrocore", 600 s (also when no resource is given)
//   urn:ferrocore:ttl:<n>   aud "ferrocore", n s (expiry tests)
//   any other URN           aud = that URN (wrong-audience tests)
//
// Test-only endpoints, beside the provider's own (loopback only, no authentication):
//   POST /admin/rotate        a new RSA signing key with a new kid replaces the current one,
//                             which leaves the JWKS: answers {"kid": "<new kid>"}
//   POST /admin/sign          body {"header": {...}, "payload": {...}}: the compact JWS of
//                             that header and payload, RS256-signed with the current key
//                             (alg and kid default to the key's): answers {"token": "..."}
//   GET  /admin/public.pem    the current signing key's public key (SPKI PEM)

import { createPublicKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const AUDIENCE = 'ferrocore';
const DEFAULT_RESOURCE = 'urn:ferrocore';
const DEFAULT_TTL_SECONDS = 600;
const RESOURCE_SCOPE = 'telemetry:read telemetry:write';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const rolesByClient = new Map(config.clients.map((c) => [c.client_id, c.roles ?? []]));

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

function resourceServer(resource) {
  const ttl = /^urn:ferrocore:ttl:(\d+)$/.exec(resource);
  if (resource === DEFAULT_RESOURCE || ttl) {
    return {
      audience: AUDIENCE,
      scope: RESOURCE_SCOPE,
      accessTokenFormat: 'jwt',
      accessTokenTTL: ttl ? Number(ttl[1]) : DEFAULT_TTL_SECONDS,
    };
  }
  return { audience: resource, scope: RESOURCE_SCOPE, accessTokenFormat: 'jwt', accessTokenTTL: DEFAULT_TTL_SECONDS };
}

function newProvider(issuer, key) {
  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: RESOURCE_SCOPE,
    })),
    jwks: { keys: [key.jwk] },
    scopes: RESOURCE_SCOPE.split(' '),
    cookies: { keys: [randomUUID()] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => DEFAULT_RESOURCE,
        getResourceServerInfo: async (_ctx, resource) => resourceServer(resource),
      },
    },
    extraTokenClaims: async (_ctx, token) => ({ roles: rolesByClient.get(token.clientId) ?? [] }),
  });
  // Goes to the log the test fixture keeps, to explain a token request that failed.
  provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error:', error));
  return provider;
}

function base64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {});
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

function answer(res, status, body, type = 'application/json') {
  const data = type === 'application/json' ? JSON.stringify(body) : body;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

let key = newSigningKey();
let issuer;
let handle;

async function admin(req, res) {
  if (req.method === 'POST' && req.url === '/admin/rotate') {
    key = newSigningKey();
    handle = newProvider(issuer, key).callback();
    return answer(res, 200, { kid: key.kid });
  }
  if (req.method === 'POST' && req.url === '/admin/sign') {
    const { header = {}, payload = {} } = await readJson(req);
    const signingInput = `${base64url({ alg: 'RS256', kid: key.kid, ...header })}.${base64url(payload)}`;
    const signature = sign('sha256', Buffer.from(signingInput), key.privateKey).toString('base64url');
    return answer(res, 200, { token: `${signingInput}.${signature}` });
  }
  if (req.method === 'GET' && req.url === '/admin/public.pem') {
    const pem = createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' });
    return answer(res, 200, pem, 'application/x-pem-file');
  }
  return answer(res, 404, { error: 'no such admin endpoint' });
}

const server = createServer((req, res) => {
  if (req.url.startsWith('/admin/')) {
    admin(req, res).catch((error) => answer(res, 400, { error: String(error) }));
    return;
  }
  handle(req, res);
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  handle = newProvider(issuer, key).callback();
  process.stdout.write(`${JSON.stringify({ issuer, kid: key.kid })}\n`);
});
