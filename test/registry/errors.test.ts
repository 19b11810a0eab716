import { inspect } from 'node:util';
import test from 'ava';
import { networkError, parseErrorBody, RegistryError } from '../../src/registry/errors.ts';
import { ALICE_PASSWORD, clientFor, registriesPerAuth, withClient } from './_support.ts';

/** Everything an error could show: message, stack, fields, causes. */
function everything(err: unknown): string {
  return `${String(err)}\n${(err as Error).stack}\n${inspect(err, { depth: Number.POSITIVE_INFINITY, showHidden: true })}\n${JSON.stringify(err)}`;
}

const WRONG_PASSWORD = 'wrong-secret-pw-31337';
/** One registry per auth mode for every test here: they read, or are refused. */
const registries = registriesPerAuth(test);

for (const auth of ['basic', 'token'] as const) {
  test(`errors from a refused login (${auth} auth) never carry the credentials`, async (t) => {
    const registry = await registries[auth]();
    const client = clientFor(t, registry.host, {
      kind: 'basic',
      username: 'alice',
      password: WRONG_PASSWORD,
    });
    const err = await t.throwsAsync(
      client.repository(registry.host, 'secret/app').getManifest('v1'),
      {
        instanceOf: RegistryError,
      },
    );
    t.is(err?.code, 'UNAUTHORIZED');
    t.is(err?.status, 401);
    const text = everything(err);
    t.regex(text, /check the credentials/);
    for (const secret of [
      WRONG_PASSWORD,
      Buffer.from(`alice:${WRONG_PASSWORD}`).toString('base64'),
      'Basic ',
    ]) {
      t.false(text.includes(secret), `error shows ${secret}`);
    }
  });
}

test('errors from a token that lacks the scope never carry the token', async (t) => {
  // A token server of the test's own, for its user.
  const registry = await registries.token(t, {
    users: {
      carol: { password: 'carol-secret-pw', grants: [{ repository: 'mine/*', actions: ['pull'] }] },
    },
  });
  const client = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'carol',
    password: 'carol-secret-pw',
  });
  const err = await t.throwsAsync(
    client.repository(registry.host, 'theirs/app').headBlob(`sha256:${'0'.repeat(64)}`),
    {
      instanceOf: RegistryError,
    },
  );
  t.is(err?.code, 'UNAUTHORIZED');
  const text = everything(err);
  t.false(text.includes('carol-secret-pw'));
  t.false(text.includes('Bearer '));
  t.false(/eyJ[\w-]+\.eyJ/.test(text), 'error shows a JWT');
});

test('errors of a client logged in correctly do not show the password either', async (t) => {
  const registry = await registries.basic();
  const client = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'alice',
    password: ALICE_PASSWORD,
  });
  const err = await t.throwsAsync(client.repository(registry.host, 'no/such').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'MANIFEST_UNKNOWN');
  t.false(everything(err).includes(ALICE_PASSWORD));
  t.regex(
    err?.message ?? '',
    /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/no\/such\/manifests\/v1 answered 404/,
  );
});

test('registry error bodies are parsed, and anything else is tolerated', (t) => {
  t.deepEqual(
    parseErrorBody(
      '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown","detail":{"d":1}}]}',
    ),
    [{ code: 'BLOB_UNKNOWN', message: 'blob unknown', detail: { d: 1 } }],
  );
  t.deepEqual(parseErrorBody('<html>502 Bad Gateway</html>'), []);
  t.deepEqual(parseErrorBody('{"errors":"nope"}'), []);
  t.deepEqual(parseErrorBody('null'), []);
  t.deepEqual(parseErrorBody('{"errors":[{"message":"no code"},7]}'), [
    { code: 'UNKNOWN', message: 'no code' },
  ]);
});

test('error codes come from the registry body first, then from the status', (t) => {
  const at = { method: 'GET', url: 'https://r.example/v2/' };
  t.is(
    new RegistryError({ ...at, status: 404, errors: [{ code: 'NAME_UNKNOWN' }] }).code,
    'NAME_UNKNOWN',
  );
  t.is(
    new RegistryError({ ...at, status: 429, errors: [{ code: 'TOOMANYREQUESTS' }] }).code,
    'TOO_MANY_REQUESTS',
  );
  t.is(new RegistryError({ ...at, status: 401 }).code, 'UNAUTHORIZED');
  t.is(new RegistryError({ ...at, status: 403 }).code, 'DENIED');
  t.is(new RegistryError({ ...at, status: 429 }).code, 'TOO_MANY_REQUESTS');
  t.is(new RegistryError({ ...at, status: 503 }).code, 'SERVER_ERROR');
  t.true(new RegistryError({ ...at, status: 503 }).retryable);
  t.false(new RegistryError({ ...at, status: 404 }).retryable);
});

test("a registry's own code outside the spec's stays in errors; code follows the status", (t) => {
  const at = { method: 'GET', url: 'https://r.example/v2/' };
  const harbor = new RegistryError({ ...at, status: 403, errors: [{ code: 'FORBIDDEN' }] });
  t.is(harbor.code, 'DENIED');
  t.deepEqual(harbor.errors, [{ code: 'FORBIDDEN' }]);
  t.regex(harbor.message, /FORBIDDEN/);
  const odd = new RegistryError({ ...at, status: 404, errors: [{ code: 'NOT_THERE_AT_ALL' }] });
  t.is(odd.code, 'NOT_FOUND');
});

test('network failures map to stable codes; other errors are left alone', (t) => {
  const fail = (code: string, message = 'boom') => Object.assign(new Error(message), { code });
  t.is(networkError(fail('ECONNRESET'), 'GET', 'u')?.code, 'CONNECTION_FAILED');
  t.true(networkError(fail('ECONNRESET'), 'GET', 'u')?.retryable);
  t.is(networkError(fail('UND_ERR_HEADERS_TIMEOUT'), 'GET', 'u')?.code, 'TIMEOUT');
  t.is(networkError(fail('DEPTH_ZERO_SELF_SIGNED_CERT'), 'GET', 'u')?.code, 'TLS_ERROR');
  t.false(networkError(fail('ERR_TLS_CERT_ALTNAME_INVALID'), 'GET', 'u')?.retryable);
  t.false(networkError(fail('ENOTFOUND'), 'GET', 'u')?.retryable);
  t.is(networkError(new Error('plain'), 'GET', 'u'), undefined);
  const proxied = networkError(
    fail('ECONNREFUSED', 'connect to http://user:hunter2@proxy:3128 failed'),
    'GET',
    'u',
  );
  t.false(proxied?.message.includes('hunter2'));
});

test('the registry error code is said once: status and code, then the registry message', async (t) => {
  const { registry, client } = withClient(t, await registries.none());
  const err = await t.throwsAsync(client.repository(registry.host, 'none/app').getManifest('v9'), {
    instanceOf: RegistryError,
  });
  t.is(
    err?.message,
    `GET http://${registry.host}/v2/none/app/manifests/v9 answered 404 (MANIFEST_UNKNOWN): manifest unknown`,
  );
  t.is(err?.summary, err?.message, 'a 404 comes without advice');
  t.is(err?.hint, undefined);
});
