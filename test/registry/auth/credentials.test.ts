import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import {
  CredentialHelperError,
  eraseWithHelper,
  getWithHelper,
  storeWithHelper,
} from '../../../src/registry/auth/credential-helper.ts';
import {
  CredentialConfigError,
  type CredentialLookup,
  CredentialStore,
  dockerConfigPath,
  dockerServerAddress,
} from '../../../src/registry/auth/credentials.ts';

/** Every secret in these tests contains this marker, so a leak is a substring search away. */
const MARK = 's3cr3t';
/** base64 forms of secrets: they must not leak either. */
const encoded = new Set<string>();
const encode = (text: string) => {
  const value = Buffer.from(text).toString('base64');
  encoded.add(value);
  return value;
};
const authOf = (user: string, password: string) => encode(`${user}:${password}`);

function assertNoLeak(t: ExecutionContext, ...texts: Array<string | undefined>) {
  for (const text of texts) {
    if (text === undefined) continue;
    t.false(text.includes(MARK), `secret leaked into: ${text}`);
    for (const value of encoded)
      t.false(text.includes(value), `encoded secret leaked into: ${text}`);
  }
}

function assertCleanLookup(t: ExecutionContext, lookup: CredentialLookup) {
  assertNoLeak(t, lookup.source, ...lookup.tried);
}

function assertCleanError(t: ExecutionContext, error: unknown) {
  const e = error as Error & { cause?: Error };
  assertNoLeak(t, e.message, e.stack, e.cause?.message);
}

/** A node program speaking the docker-credential-helpers protocol, backed by a JSON file. */
const FAKE_HELPER = `#!/usr/bin/env node
const fs = require('node:fs');
const action = process.argv[2];
const input = fs.readFileSync(0, 'utf8');
const db = process.env.FAKE_HELPER_DB;
fs.appendFileSync(process.env.FAKE_HELPER_LOG, JSON.stringify({ action, input }) + '\\n');
const store = fs.existsSync(db) ? JSON.parse(fs.readFileSync(db, 'utf8')) : {};
const notFound = () => { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); };
if (action === 'get') {
  const entry = store[input];
  if (!entry) notFound();
  process.stdout.write(JSON.stringify({ ServerURL: input, Username: entry.Username, Secret: entry.Secret }));
} else if (action === 'store') {
  const c = JSON.parse(input);
  store[c.ServerURL] = { Username: c.Username, Secret: c.Secret };
  fs.writeFileSync(db, JSON.stringify(store));
} else if (action === 'erase') {
  if (!store[input]) notFound();
  delete store[input];
  fs.writeFileSync(db, JSON.stringify(store));
} else {
  process.stdout.write('unknown action\\n');
  process.exit(1);
}
`;

const SHELL_HELPERS: Record<string, string> = {
  broken: `cat >/dev/null
echo '{"Username":"leaky","Secret":"${MARK}-broken"}'
echo 'keychain is locked' >&2
echo 'second line' >&2
exit 3`,
  garbled: `cat >/dev/null
echo 'user=x secret=${MARK}-garbled'`,
  stdouterr: `cat >/dev/null
echo 'error getting credentials - keychain unavailable'
exit 1`,
  // Records its pid, then outlives any test: only a kill ends it in time.
  slow: 'echo $$ > "$(dirname "$0")/slow.pid"\nexec sleep 600',
};

interface Sandbox {
  readonly root: string;
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  write(path: string, content: unknown): Promise<string>;
  seedHelper(serverUrl: string, username: string, secret: string): Promise<void>;
  helperCalls(): Promise<Array<{ action: string; input: string }>>;
}

async function sandbox(t: ExecutionContext): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), 'ociferry-credentials-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const home = join(root, 'home');
  const bin = join(root, 'bin');
  await mkdir(home);
  await mkdir(bin);
  await writeFile(join(bin, 'package.json'), '{"type":"commonjs"}');
  await writeFile(join(bin, 'docker-credential-fake'), FAKE_HELPER, { mode: 0o755 });
  for (const [name, body] of Object.entries(SHELL_HELPERS)) {
    await writeFile(join(bin, `docker-credential-${name}`), `#!/bin/sh\n${body}\n`);
    await chmod(join(bin, `docker-credential-${name}`), 0o755);
  }
  const db = join(root, 'helper-db.json');
  const log = join(root, 'helper.log');
  // Built from scratch: nothing of the real user's configuration may leak in.
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
    FAKE_HELPER_DB: db,
    FAKE_HELPER_LOG: log,
  };
  return {
    root,
    home,
    env,
    async write(path, content) {
      const file = join(root, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
      return file;
    },
    async seedHelper(serverUrl, username, secret) {
      await storeWithHelper('fake', serverUrl, username, secret, { env });
      await rm(log, { force: true });
    },
    async helperCalls() {
      const text = await readFile(log, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line));
    },
  };
}

const dockerConfig = (s: Sandbox, content: unknown) => s.write('home/.docker/config.json', content);

test('dockerConfigPath honours DOCKER_CONFIG, else ~/.docker', (t) => {
  t.is(dockerConfigPath({ HOME: join('h', 'u') }), join('h', 'u', '.docker', 'config.json'));
  t.is(dockerConfigPath({ HOME: 'h', DOCKER_CONFIG: 'cfg' }), join('cfg', 'config.json'));
});

test('dockerServerAddress is the v1 URL for Docker Hub and the host otherwise', (t) => {
  for (const hub of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'Docker.IO']) {
    t.is(dockerServerAddress(hub), 'https://index.docker.io/v1/');
  }
  t.is(dockerServerAddress('ghcr.io'), 'ghcr.io');
  t.is(dockerServerAddress('localhost:5000'), 'localhost:5000');
});

test('reads user and password from docker auths, split on the first colon, NULs trimmed', async (t) => {
  const s = await sandbox(t);
  const file = await dockerConfig(s, {
    auths: { 'ghcr.io': { auth: authOf('octo', `pa:${MARK}\0\0`) } },
  });
  const lookup = await new CredentialStore({ env: s.env }).lookup('ghcr.io');
  t.deepEqual(lookup.credential, { kind: 'basic', username: 'octo', password: `pa:${MARK}` });
  t.is(lookup.source, `${file} auths["ghcr.io"]`);
  t.true(lookup.tried.includes(`${file} auths`));
  assertCleanLookup(t, lookup);
});

test('DOCKER_CONFIG moves the docker config', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { auths: { 'r.example': { auth: authOf('home', MARK) } } });
  const file = await s.write('elsewhere/config.json', {
    auths: { 'r.example': { auth: authOf('moved', MARK) } },
  });
  const env = { ...s.env, DOCKER_CONFIG: join(s.root, 'elsewhere') };
  const lookup = await new CredentialStore({ env }).lookup('r.example');
  t.like(lookup.credential, { kind: 'basic', username: 'moved' });
  t.is(lookup.source, `${file} auths["r.example"]`);
});

test('every Docker Hub alias finds the https://index.docker.io/v1/ entry', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, {
    auths: { 'https://index.docker.io/v1/': { auth: authOf('hubuser', MARK) } },
  });
  const store = new CredentialStore({ env: s.env });
  for (const name of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
    const lookup = await store.lookup(name, 'library/alpine');
    t.like(lookup.credential, { kind: 'basic', username: 'hubuser' }, name);
  }
  t.is((await store.lookup('quay.io')).credential, undefined);
});

test('a plain docker.io key is Docker Hub too', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { auths: { 'docker.io': { auth: authOf('plain', MARK) } } });
  const lookup = await new CredentialStore({ env: s.env }).lookup('registry-1.docker.io');
  t.like(lookup.credential, { username: 'plain' });
});

test('docker keys with scheme and path match by host, and the port counts', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, {
    auths: {
      'https://reg.example:5000/v2/': { auth: authOf('ported', MARK) },
      'other.example/some/path': { auth: authOf('pathed', MARK) },
    },
  });
  const store = new CredentialStore({ env: s.env });
  t.like((await store.lookup('reg.example:5000')).credential, { username: 'ported' });
  t.like((await store.lookup('REG.example:5000')).credential, { username: 'ported' });
  t.is((await store.lookup('reg.example')).credential, undefined);
  t.like((await store.lookup('other.example', 'any/repo')).credential, { username: 'pathed' });
});

test('the exact docker key wins over an equivalent URL key listed first', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, {
    auths: {
      'https://quay.io': { auth: authOf('url', MARK) },
      'quay.io': { auth: authOf('exact', MARK) },
    },
  });
  const lookup = await new CredentialStore({ env: s.env }).lookup('quay.io');
  t.like(lookup.credential, { username: 'exact' });
});

test('identitytoken, registrytoken and username/password entries', async (t) => {
  const s = await sandbox(t);
  const acrUser = '00000000-0000-0000-0000-000000000000';
  await dockerConfig(s, {
    auths: {
      'acr.example': { auth: authOf(acrUser, ''), identitytoken: `${MARK}-refresh` },
      'bare.example': { identitytoken: `${MARK}-bare` },
      'token.example': { registrytoken: `${MARK}-bearer` },
      'fields.example': { username: 'u', password: `${MARK}-pw` },
    },
  });
  const store = new CredentialStore({ env: s.env });
  t.deepEqual((await store.lookup('acr.example')).credential, {
    kind: 'identityToken',
    token: `${MARK}-refresh`,
    username: acrUser,
  });
  t.deepEqual((await store.lookup('bare.example')).credential, {
    kind: 'identityToken',
    token: `${MARK}-bare`,
  });
  t.deepEqual((await store.lookup('token.example')).credential, {
    kind: 'registryToken',
    token: `${MARK}-bearer`,
  });
  t.deepEqual((await store.lookup('fields.example')).credential, {
    kind: 'basic',
    username: 'u',
    password: `${MARK}-pw`,
  });
});

test('a placeholder entry without a helper means no credential', async (t) => {
  const s = await sandbox(t);
  const file = await dockerConfig(s, { auths: { 'ghcr.io': {} } });
  const lookup = await new CredentialStore({ env: s.env }).lookup('ghcr.io');
  t.is(lookup.credential, undefined);
  t.is(lookup.source, 'none');
  t.true(lookup.tried.includes(`${file} auths`));
});

test('with no config anywhere the lookup is anonymous and says where it looked', async (t) => {
  const s = await sandbox(t);
  const lookup = await new CredentialStore({ env: s.env }).lookup('ghcr.io');
  t.deepEqual(lookup, {
    source: 'none',
    tried: [
      `${join(s.home, '.config', 'containers', 'auth.json')} (no such file)`,
      `${join(s.home, '.docker', 'config.json')} (no such file)`,
    ],
  });
});

test('credHelpers answers instead of auths and is asked with the host', async (t) => {
  const s = await sandbox(t);
  await s.seedHelper('gcr.example', 'oauth2accesstoken', `${MARK}-gcr`);
  const file = await dockerConfig(s, {
    auths: { 'gcr.example': { auth: authOf('stale', MARK) } },
    credHelpers: { 'gcr.example': 'fake' },
  });
  const lookup = await new CredentialStore({ env: s.env }).lookup('gcr.example');
  t.deepEqual(lookup.credential, {
    kind: 'basic',
    username: 'oauth2accesstoken',
    password: `${MARK}-gcr`,
  });
  t.is(lookup.source, `credential helper docker-credential-fake (${file} credHelpers)`);
  t.deepEqual(await s.helperCalls(), [{ action: 'get', input: 'gcr.example' }]);
  assertCleanLookup(t, lookup);
});

test('credsStore is asked with the Docker Hub server URL', async (t) => {
  const s = await sandbox(t);
  await s.seedHelper('https://index.docker.io/v1/', 'hubuser', `${MARK}-hub`);
  const file = await dockerConfig(s, {
    auths: { 'https://index.docker.io/v1/': {} },
    credsStore: 'fake',
  });
  const lookup = await new CredentialStore({ env: s.env }).lookup('docker.io', 'library/alpine');
  t.like(lookup.credential, { kind: 'basic', username: 'hubuser' });
  t.is(lookup.source, `credential helper docker-credential-fake (${file} credsStore)`);
  t.deepEqual(await s.helperCalls(), [{ action: 'get', input: 'https://index.docker.io/v1/' }]);
});

test('when credsStore has nothing, auths are not consulted (as in docker)', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, {
    auths: { 'quay.io': { auth: authOf('stale', MARK) } },
    credsStore: 'fake',
  });
  const lookup = await new CredentialStore({ env: s.env }).lookup('quay.io');
  t.is(lookup.credential, undefined);
  t.is(lookup.source, 'none');
  t.deepEqual(await s.helperCalls(), [{ action: 'get', input: 'quay.io' }]);
});

test('credHelpers overrides credsStore for its host only', async (t) => {
  const s = await sandbox(t);
  await s.seedHelper('quay.io', 'robot', `${MARK}-quay`);
  await dockerConfig(s, { credsStore: 'broken', credHelpers: { 'quay.io': 'fake' } });
  const store = new CredentialStore({ env: s.env });
  t.like((await store.lookup('quay.io')).credential, { username: 'robot' });
  const error = await t.throwsAsync(store.lookup('ghcr.io'), { instanceOf: CredentialHelperError });
  t.is(error?.helper, 'broken');
});

test('a <token> user from a helper is an identity token', async (t) => {
  const s = await sandbox(t);
  await s.seedHelper('acr.example', '<token>', `${MARK}-refresh`);
  await dockerConfig(s, { credHelpers: { 'acr.example': 'fake' } });
  const lookup = await new CredentialStore({ env: s.env }).lookup('acr.example');
  t.deepEqual(lookup.credential, { kind: 'identityToken', token: `${MARK}-refresh` });
});

test('store, get and erase through a real helper program', async (t) => {
  const s = await sandbox(t);
  const options = { env: s.env };
  t.is(await getWithHelper('fake', 'r.example', options), undefined);
  await storeWithHelper('fake', 'r.example', 'me', `${MARK}-stored`, options);
  t.deepEqual(await getWithHelper('fake', 'r.example', options), {
    kind: 'basic',
    username: 'me',
    password: `${MARK}-stored`,
  });
  await eraseWithHelper('fake', 'r.example', options);
  t.is(await getWithHelper('fake', 'r.example', options), undefined);
  await t.notThrowsAsync(eraseWithHelper('fake', 'r.example', options), 'erasing twice is fine');
  const calls = await s.helperCalls();
  t.deepEqual(
    calls.map((c) => c.action),
    ['get', 'store', 'get', 'erase', 'get', 'erase'],
  );
  t.deepEqual(JSON.parse(calls[1]?.input ?? ''), {
    ServerURL: 'r.example',
    Username: 'me',
    Secret: `${MARK}-stored`,
  });
});

test('a failing helper reports its name and first stderr line, never its output', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { credsStore: 'broken' });
  const error = await t.throwsAsync(new CredentialStore({ env: s.env }).lookup('ghcr.io'), {
    instanceOf: CredentialHelperError,
  });
  t.is(error?.code, 'CREDENTIAL_HELPER_FAILED');
  t.is(error?.helper, 'broken');
  t.is(error?.message, 'docker-credential-broken get exited with code 3: keychain is locked');
  assertCleanError(t, error);
});

test('a helper that exits 0 with non-JSON output fails without echoing it', async (t) => {
  const s = await sandbox(t);
  const error = await t.throwsAsync(getWithHelper('garbled', 'ghcr.io', { env: s.env }), {
    instanceOf: CredentialHelperError,
  });
  t.regex(error?.message ?? '', /not JSON/);
  assertCleanError(t, error);
});

test('a helper that reports its error on stdout is quoted', async (t) => {
  const s = await sandbox(t);
  const error = await t.throwsAsync(getWithHelper('stdouterr', 'ghcr.io', { env: s.env }));
  t.is(
    error?.message,
    'docker-credential-stdouterr get exited with code 1: error getting credentials - keychain unavailable',
  );
});

test('store and erase failures are errors', async (t) => {
  const s = await sandbox(t);
  const options = { env: s.env };
  await t.throwsAsync(storeWithHelper('broken', 'r.example', 'u', `${MARK}-x`, options), {
    instanceOf: CredentialHelperError,
    message: /store exited with code 3/,
  });
  await t.throwsAsync(eraseWithHelper('broken', 'r.example', options), {
    instanceOf: CredentialHelperError,
    message: /erase exited with code 3/,
  });
});

test('a helper missing from PATH is a CredentialHelperError', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { credsStore: 'desktop-not-installed' });
  await t.throwsAsync(new CredentialStore({ env: s.env }).lookup('ghcr.io'), {
    instanceOf: CredentialHelperError,
    message: 'docker-credential-desktop-not-installed is not installed (not found on PATH)',
  });
});

test('a helper name that is a path is refused', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { credsStore: '../bin/fake' });
  await t.throwsAsync(new CredentialStore({ env: s.env }).lookup('ghcr.io'), {
    instanceOf: CredentialHelperError,
    message: /not a valid credential helper name/,
  });
});

test('a hanging helper is killed after the timeout', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { credsStore: 'slow' });
  await t.throwsAsync(new CredentialStore({ env: s.env, helperTimeoutMs: 300 }).lookup('ghcr.io'), {
    instanceOf: CredentialHelperError,
    message: 'docker-credential-slow get timed out after 300 ms',
  });
  await helperGone(t, s);
});

test('an aborted lookup rejects with the abort reason', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { credsStore: 'slow' });
  const store = new CredentialStore({ env: s.env, helperTimeoutMs: 1000 });
  const controller = new AbortController();
  const pending = store.lookup('ghcr.io', undefined, controller.signal);
  setTimeout(() => controller.abort(new Error('user gave up')), 50);
  await t.throwsAsync(pending, { message: 'user gave up' });
  const aborted = await store.lookup('ghcr.io', undefined, AbortSignal.abort()).catch((e) => e);
  t.is((aborted as DOMException).name, 'AbortError');
});

test('aborting a helper call kills the helper', async (t) => {
  const s = await sandbox(t);
  const controller = new AbortController();
  const calling = getWithHelper('slow', 'ghcr.io', { env: s.env, signal: controller.signal });
  await slowHelperPid(s);
  controller.abort(new Error('stop'));
  await t.throwsAsync(calling, { message: 'stop' });
  await helperGone(t, s);
});

/** The pid the `slow` helper recorded, once it has started. */
async function slowHelperPid(s: Sandbox): Promise<number> {
  for (;;) {
    const text = await readFile(join(s.root, 'bin', 'slow.pid'), 'utf8').catch(() => '');
    if (text.endsWith('\n')) return Number(text);
    await sleep(10);
  }
}

/**
 * Wait until the `slow` helper is dead (gone or a zombie); it would sleep 600 s otherwise. A
 * helper killed before it ran its first command left no pid.
 */
async function helperGone(t: ExecutionContext, s: Sandbox): Promise<void> {
  const text = await readFile(join(s.root, 'bin', 'slow.pid'), 'utf8').catch(() => '');
  const pid = Number(text);
  for (;;) {
    if (!text.endsWith('\n')) break;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    // The field after the parenthesised command name is the state; Z is a dead process not yet reaped.
    if (stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) break;
    await sleep(10);
  }
  t.pass('the helper was killed');
}

test('lookups are cached per host and repository, helper answers per server', async (t) => {
  const s = await sandbox(t);
  await s.seedHelper('ghcr.io', 'octo', `${MARK}-gh`);
  await dockerConfig(s, { credHelpers: { 'ghcr.io': 'fake' } });
  const store = new CredentialStore({ env: s.env });
  const [a, b] = await Promise.all([
    store.lookup('ghcr.io', 'o/a'),
    store.lookup('ghcr.io', 'o/a'),
  ]);
  t.is(a, b);
  t.is(await store.lookup('ghcr.io', 'o/a'), a);
  const other = await store.lookup('ghcr.io', 'o/b');
  t.not(other, a);
  t.deepEqual(other.credential, a.credential);
  t.is((await s.helperCalls()).length, 1);
  await new CredentialStore({ env: s.env }).lookup('ghcr.io', 'o/a');
  t.is((await s.helperCalls()).length, 2, 'a new store asks again');
});

test('a failed lookup is not cached', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, '{"auths": ');
  const store = new CredentialStore({ env: s.env });
  await t.throwsAsync(store.lookup('ghcr.io'), { instanceOf: CredentialConfigError });
  await dockerConfig(s, { auths: { 'ghcr.io': { auth: authOf('fixed', MARK) } } });
  t.like((await store.lookup('ghcr.io')).credential, { username: 'fixed' });
});

test('containers auth.json namespace keys: the most specific wins', async (t) => {
  const s = await sandbox(t);
  const file = await s.write('home/.config/containers/auth.json', {
    auths: {
      'quay.io': { auth: authOf('host', MARK) },
      'quay.io/org': { auth: authOf('org', MARK) },
      'quay.io/org/app': { auth: authOf('app', MARK) },
    },
  });
  const store = new CredentialStore({ env: s.env });
  const user = async (repository?: string) => {
    const lookup = await store.lookup('quay.io', repository);
    assertCleanLookup(t, lookup);
    return lookup.credential?.kind === 'basic' ? lookup.credential.username : undefined;
  };
  t.is(await user('org/app'), 'app');
  t.is(await user('org/app/sub'), 'app');
  t.is(await user('org/other'), 'org');
  t.is(await user('orgx/app'), 'host');
  t.is(await user(), 'host');
  t.is((await store.lookup('quay.io', 'org/app')).source, `${file} auths["quay.io/org/app"]`);
});

test('containers Docker Hub namespace keys', async (t) => {
  const s = await sandbox(t);
  await s.write('home/.config/containers/auth.json', {
    auths: {
      'docker.io/library': { auth: authOf('official', MARK) },
      'docker.io': { auth: authOf('hub', MARK) },
    },
  });
  const store = new CredentialStore({ env: s.env });
  t.like((await store.lookup('docker.io', 'library/alpine')).credential, { username: 'official' });
  t.like((await store.lookup('index.docker.io', 'me/app')).credential, { username: 'hub' });
});

test('namespace keys in the docker config count as their host (as in docker)', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { auths: { 'quay.io/org': { auth: authOf('org', MARK) } } });
  const lookup = await new CredentialStore({ env: s.env }).lookup('quay.io', 'elsewhere/app');
  t.like(lookup.credential, { username: 'org' });
});

test('XDG_RUNTIME_DIR auth.json comes before XDG_CONFIG_HOME', async (t) => {
  const s = await sandbox(t);
  const runtime = await s.write('run/containers/auth.json', {
    auths: { 'quay.io': { auth: authOf('runtime', MARK) } },
  });
  await s.write('xdg/containers/auth.json', {
    auths: {
      'quay.io': { auth: authOf('config', MARK) },
      'ghcr.io': { auth: authOf('config', MARK) },
    },
  });
  await s.write('home/.config/containers/auth.json', {
    auths: { 'ghcr.io': { auth: authOf('unused', MARK) } },
  });
  const env = {
    ...s.env,
    XDG_RUNTIME_DIR: join(s.root, 'run'),
    XDG_CONFIG_HOME: join(s.root, 'xdg'),
  };
  const store = new CredentialStore({ env });
  const quay = await store.lookup('quay.io');
  t.like(quay.credential, { username: 'runtime' });
  t.is(quay.source, `${runtime} auths["quay.io"]`);
  t.like((await store.lookup('ghcr.io')).credential, { username: 'config' });
});

test('containers files come before the docker config', async (t) => {
  const s = await sandbox(t);
  await s.write('home/.config/containers/auth.json', {
    auths: { 'quay.io': { auth: authOf('podman', MARK) } },
  });
  await dockerConfig(s, { auths: { 'quay.io': { auth: authOf('docker', MARK) } } });
  const lookup = await new CredentialStore({ env: s.env }).lookup('quay.io');
  t.like(lookup.credential, { username: 'podman' });
});

test('an empty containers entry falls through to the docker config', async (t) => {
  const s = await sandbox(t);
  await s.write('home/.config/containers/auth.json', { auths: { 'quay.io': {} } });
  await dockerConfig(s, { auths: { 'quay.io': { auth: authOf('docker', MARK) } } });
  const lookup = await new CredentialStore({ env: s.env }).lookup('quay.io');
  t.like(lookup.credential, { username: 'docker' });
});

test('REGISTRY_AUTH_FILE replaces the containers search, the docker config still follows', async (t) => {
  const s = await sandbox(t);
  const authFile = await s.write('custom/auth.json', {
    auths: { 'quay.io': { auth: authOf('custom', MARK) } },
  });
  await s.write('home/.config/containers/auth.json', {
    auths: {
      'quay.io': { auth: authOf('ignored', MARK) },
      'ghcr.io': { auth: authOf('ignored', MARK) },
    },
  });
  await dockerConfig(s, { auths: { 'ghcr.io': { auth: authOf('docker', MARK) } } });
  const store = new CredentialStore({ env: { ...s.env, REGISTRY_AUTH_FILE: authFile } });
  const quay = await store.lookup('quay.io');
  t.like(quay.credential, { username: 'custom' });
  t.is(quay.source, `${authFile} auths["quay.io"]`);
  const ghcr = await store.lookup('ghcr.io');
  t.like(ghcr.credential, { username: 'docker' });
  t.false(ghcr.tried.some((place) => place.includes(join('.config', 'containers'))));
});

test('containers credHelpers are asked with the bare host', async (t) => {
  const s = await sandbox(t);
  await s.seedHelper('docker.io', 'podmanuser', `${MARK}-p`);
  await s.write('home/.config/containers/auth.json', {
    auths: { 'docker.io': { auth: authOf('shadowed', MARK) } },
    credHelpers: { 'docker.io': 'fake' },
  });
  const lookup = await new CredentialStore({ env: s.env }).lookup('docker.io', 'library/alpine');
  t.like(lookup.credential, { username: 'podmanuser' });
  t.deepEqual(await s.helperCalls(), [{ action: 'get', input: 'docker.io' }]);
});

test('credsStore in a containers file is ignored (as in containers/image)', async (t) => {
  const s = await sandbox(t);
  await s.write('home/.config/containers/auth.json', {
    auths: { 'quay.io': { auth: authOf('podman', MARK) } },
    credsStore: 'broken',
  });
  const lookup = await new CredentialStore({ env: s.env }).lookup('quay.io');
  t.like(lookup.credential, { username: 'podman' });
});

test('explicit credentials override every source', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, { credsStore: 'broken' });
  const explicit = { 'index.docker.io': { kind: 'registryToken', token: `${MARK}-api` } as const };
  const store = new CredentialStore({ env: s.env, explicit });
  const hub = await store.lookup('docker.io');
  t.deepEqual(hub, {
    credential: { kind: 'registryToken', token: `${MARK}-api` },
    source: 'explicit credentials',
    tried: ['explicit credentials'],
  });
  await t.throwsAsync(store.lookup('ghcr.io'), { instanceOf: CredentialHelperError });
});

test('DOCKER_AUTH_CONFIG is read before the docker config file', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, {
    auths: {
      'quay.io': { auth: authOf('file', MARK) },
      'ghcr.io': { auth: authOf('file', MARK) },
    },
  });
  const DOCKER_AUTH_CONFIG = JSON.stringify({
    auths: { 'https://quay.io': { auth: authOf('env', MARK) } },
  });
  const store = new CredentialStore({ env: { ...s.env, DOCKER_AUTH_CONFIG } });
  const quay = await store.lookup('quay.io');
  t.like(quay.credential, { username: 'env' });
  t.is(quay.source, 'DOCKER_AUTH_CONFIG auths["https://quay.io"]');
  t.like((await store.lookup('ghcr.io')).credential, { username: 'file' });
});

test('malformed JSON is a CredentialConfigError naming the file, not quoting it', async (t) => {
  const s = await sandbox(t);
  const file = await dockerConfig(
    s,
    `{"auths": {"ghcr.io": {"auth": "${authOf('u', MARK)}", "password": "${MARK}-raw"}`,
  );
  const error = await t.throwsAsync(new CredentialStore({ env: s.env }).lookup('ghcr.io'), {
    instanceOf: CredentialConfigError,
  });
  t.is(error?.code, 'CREDENTIAL_CONFIG_INVALID');
  t.is(error?.file, file);
  t.is(error?.message, `${file} is not valid JSON`);
  assertCleanError(t, error);
});

test('malformed DOCKER_AUTH_CONFIG is named, not quoted', async (t) => {
  const s = await sandbox(t);
  const env = { ...s.env, DOCKER_AUTH_CONFIG: `{"auths": {"x": "${MARK}"` };
  const error = await t.throwsAsync(new CredentialStore({ env }).lookup('x'), {
    instanceOf: CredentialConfigError,
    message: 'DOCKER_AUTH_CONFIG is not valid JSON',
  });
  assertCleanError(t, error);
});

const malformed: Array<[string, unknown, RegExp]> = [
  [
    'auth that is not base64',
    { auths: { 'r.example': { auth: `${MARK}!!` } } },
    /auth that is not base64/,
  ],
  [
    'auth without a colon',
    { auths: { 'r.example': { auth: encode(`${MARK}nocolon`) } } },
    /does not decode to user:password/,
  ],
  [
    'auth with an empty user',
    { auths: { 'r.example': { auth: authOf('', MARK) } } },
    /does not decode to user:password/,
  ],
  ['auths that is an array', { auths: [] }, /auths that is not an object/],
  [
    'an entry that is a string',
    { auths: { 'r.example': MARK } },
    /auths\["r.example"\] that is not an object/,
  ],
  [
    'a number password',
    { auths: { 'r.example': { password: 42 } } },
    /password that is not a string/,
  ],
  ['a credHelpers value that is not a string', { credHelpers: { 'r.example': 1 } }, /credHelpers/],
  ['a credsStore that is not a string', { credsStore: true }, /credsStore that is not a string/],
  ['a top level array', [MARK], /is not a JSON object/],
];

for (const [name, content, message] of malformed) {
  test(`a config with ${name} is a CredentialConfigError without secrets`, async (t) => {
    const s = await sandbox(t);
    const file = await dockerConfig(s, content);
    const error = await t.throwsAsync(new CredentialStore({ env: s.env }).lookup('r.example'), {
      instanceOf: CredentialConfigError,
      message,
    });
    t.true(error?.message.startsWith(file));
    assertCleanError(t, error);
  });
}

test('an unreadable config path is a CredentialConfigError', async (t) => {
  const s = await sandbox(t);
  const dir = join(s.home, '.docker', 'config.json');
  await mkdir(dir, { recursive: true });
  await t.throwsAsync(new CredentialStore({ env: s.env }).lookup('ghcr.io'), {
    instanceOf: CredentialConfigError,
    message: `${dir} cannot be read (EISDIR)`,
  });
});

test('an empty config file is an empty config', async (t) => {
  const s = await sandbox(t);
  await dockerConfig(s, '  \n');
  const lookup = await new CredentialStore({ env: s.env }).lookup('ghcr.io');
  t.is(lookup.credential, undefined);
});
