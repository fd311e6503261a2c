// A real OpenID Connect provider for the sign-in tests: the certified `oidc-provider` package.
//
//   node provider.js PORT CLIENTS_JSON
//
// Listens on http://127.0.0.1:PORT (that is also its issuer). CLIENTS_JSON is a JSON list of
// clients ({client_id, client_secret, redirect_uris}). Every client must use PKCE (S256). The
// login form is the package's development interaction: any login name is accepted, and the
// name typed is the account's subject and e-mail address (claims `email`, `email_verified`;
// a name "overifierad:<address>" has the address with `email_verified: false`).
// Signing keys are made anew at every start. Prints "listening <issuer>" when ready.

import { generateKeyPairSync } from 'node:crypto';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const [port, clientsJson] = process.argv.slice(2);
if (!port || !clientsJson) {
  console.error('usage: node provider.js PORT CLIENTS_JSON');
  process.exit(2);
}

const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-signing', use: 'sig', alg: 'RS256' };

const clients = JSON.parse(clientsJson).map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...client,
}));

const configuration = {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  async findAccount(ctx, accountId) {
    return {
      accountId,
      async claims() {
        // "overifierad:<address>" signs in with an address the provider has not verified.
        const unverified = accountId.startsWith('overifierad:');
        const email = unverified ? accountId.slice('overifierad:'.length) : accountId;
        return { sub: accountId, email, email_verified: !unverified };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, error) => console.error('server_error', error));
const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
