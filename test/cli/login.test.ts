import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry, startRegistry } from '../helpers/registry.ts';
import { isolatedEnv, ociferry } from './support/cli.ts';
import { onTerminal } from './support/terminal.ts';

const PASSWORD = 'alice-secret-pw';
const WRONG_PASSWORD = 'not-alices-password';

interface DockerConfig {
  auths?: Record<string, unknown>;
  [field: string]: unknown;
}

/** The basic-auth registry of the tests that need none of their own: each keeps its credentials in its own docker config. */
const sharedBasic = sharedRegistry(test, { auth: 'basic' });

async function readConfig(dockerConfig: string): Promise<DockerConfig> {
  return JSON.parse(await readFile(path.join(dockerConfig, 'config.json'), 'utf8'));
}

test('login saves auths that later commands use, logout removes them', async (t) => {
  const registry = await sharedBasic();
  await pushFixture(registry, 'oci-image', 'app/single');
  const { env, dockerConfig } = await isolatedEnv(t);
  const ref = `${registry.host}/app/single:v1`;

  const login = await ociferry(['login', registry.host, '-u', 'alice', '--password-stdin'], {
    env,
    input: `${PASSWORD}\n`,
  });
  t.is(login.code, 0, login.stderr);
  t.regex(
    login.stderr,
    new RegExp(
      `^Login succeeded: saved the credentials for ${registry.host} in .*config\\.json$`,
      'm',
    ),
  );
  t.false(login.stdout.includes(PASSWORD) || login.stderr.includes(PASSWORD));
  const config = await readConfig(dockerConfig);
  t.deepEqual(config.auths, {
    [registry.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') },
  });
  t.is((await stat(path.join(dockerConfig, 'config.json'))).mode & 0o777, 0o600);

  t.is((await ociferry(['inspect', ref], { env })).code, 0);

  const logout = await ociferry(['logout', registry.host], { env });
  t.is(logout.code, 0, logout.stderr);
  t.regex(logout.stderr, /^Removed the credentials for /m);
  t.deepEqual((await readConfig(dockerConfig)).auths, {});
  const denied = await ociferry(['inspect', ref], { env });
  t.is(denied.code, 1);
  t.regex(denied.stderr, /^hint: no credentials for /m);

  const again = await ociferry(['logout', registry.host], { env });
  t.is(again.code, 0);
  t.regex(again.stderr, new RegExp(`^Not logged in to ${registry.host}$`, 'm'));
});

test('login keeps the rest of the docker config and replaces other spellings of the key', async (t) => {
  const registry = await sharedBasic();
  const { env, dockerConfig } = await isolatedEnv(t);
  await mkdir(dockerConfig, { recursive: true });
  const other = { auth: Buffer.from('bob:pw').toString('base64') };
  await writeFile(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({
      auths: {
        'other.example': other,
        [`http://${registry.host}/v2/`]: { auth: 'c3RhbGU6c3RhbGU=' },
      },
      psFormat: 'table {{.ID}}',
    }),
  );
  const login = await ociferry(['login', registry.host, '-u', 'alice', '--password-stdin'], {
    env,
    input: PASSWORD,
  });
  t.is(login.code, 0, login.stderr);
  const config = await readConfig(dockerConfig);
  t.is(config.psFormat, 'table {{.ID}}');
  t.deepEqual(config.auths, {
    'other.example': other,
    [registry.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') },
  });
});

for (const auth of ['basic', 'token'] as const) {
  test(`${auth} registry: login saves a password the registry accepts and refuses a wrong one, writing nothing`, async (t) => {
    // The token server's record is the registry's: the token registry is this test's own.
    const registry = auth === 'basic' ? await sharedBasic(t) : await startRegistry(t, { auth });
    const { env, dockerConfig } = await isolatedEnv(t);
    await mkdir(dockerConfig, { recursive: true });
    const configFile = path.join(dockerConfig, 'config.json');
    const before = `${JSON.stringify({ auths: { 'other.example': { auth: 'Ym9iOnB3' } } })}\n`;
    await writeFile(configFile, before);
    const args = ['login', registry.host, '-u', 'alice', '--password-stdin'];

    for (const extra of [[], ['--debug'], ['--json']]) {
      const refused = await ociferry([...extra, ...args], { env, input: WRONG_PASSWORD });
      t.is(refused.code, 1, refused.stderr);
      t.regex(
        refused.stderr,
        new RegExp(
          `^error: login ${registry.host}: ${registry.host} refused the credentials of user alice \\(GET .+ answered 401\\); nothing was saved$`,
          'm',
        ),
      );
      t.regex(refused.stderr, /^hint: check the user name and the password/m);
      t.is(refused.stdout, '');
      t.false(refused.stderr.includes(WRONG_PASSWORD), `${extra} shows the password`);
      t.is(await readFile(configFile, 'utf8'), before, 'the config file is unchanged');
    }
    t.deepEqual(registry.tokenRequests, [], 'the token server issued nothing');

    const accepted = await ociferry(args, { env, input: PASSWORD });
    t.is(accepted.code, 0, accepted.stderr);
    t.regex(accepted.stderr, /^Login succeeded: saved the credentials for /m);
    t.false(accepted.stdout.includes(PASSWORD) || accepted.stderr.includes(PASSWORD));
    t.deepEqual((await readConfig(dockerConfig)).auths, {
      'other.example': { auth: 'Ym9iOnB3' },
      [registry.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') },
    });
    const pings = await registry.requests({ method: 'GET', path: /^\/v2\/$/, status: 200 });
    t.true(
      pings.some((r) => r.userAgent === 'ociferry'),
      'the registry answered 200 to the credentials',
    );
  });
}

test('login and logout go through the credsStore helper the docker config names', async (t) => {
  const registry = await sharedBasic();
  await pushFixture(registry, 'oci-image', 'app/single');
  const { env, dir, dockerConfig } = await isolatedEnv(t);
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  const helper = path.join(bin, 'docker-credential-ociferrytest');
  const store = path.join(dir, 'helper-store.json');
  await writeFile(
    helper,
    `#!/bin/sh
case "$1" in
  store) cat > "${store}" ;;
  get) if [ -f "${store}" ]; then cat "${store}"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) cat > /dev/null; rm -f "${store}" ;;
esac
`,
  );
  await chmod(helper, 0o755);
  await mkdir(dockerConfig, { recursive: true });
  await writeFile(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({ credsStore: 'ociferrytest' }),
  );
  const helperEnv = { ...env, PATH: `${bin}:${env.PATH}` };

  const login = await ociferry(['login', registry.host, '-u', 'alice', '--password-stdin'], {
    env: helperEnv,
    input: PASSWORD,
  });
  t.is(login.code, 0, login.stderr);
  t.regex(login.stderr, / in credential helper docker-credential-ociferrytest /);
  t.deepEqual(JSON.parse(await readFile(store, 'utf8')), {
    ServerURL: registry.host,
    Username: 'alice',
    Secret: PASSWORD,
  });
  const config = await readConfig(dockerConfig);
  t.deepEqual(config, { credsStore: 'ociferrytest', auths: { [registry.host]: {} } });

  const inspect = await ociferry(['inspect', `${registry.host}/app/single:v1`], { env: helperEnv });
  t.is(inspect.code, 0, inspect.stderr);

  const logout = await ociferry(['logout', registry.host], { env: helperEnv });
  t.is(logout.code, 0, logout.stderr);
  await t.throwsAsync(stat(store), { code: 'ENOENT' });
  t.deepEqual((await readConfig(dockerConfig)).auths, {});
});

test('login without a terminal needs --password-stdin and -u: usage errors', async (t) => {
  const { env } = await isolatedEnv(t);
  const noStdin = await ociferry(['login', 'registry.example', '-u', 'alice'], { env });
  t.is(noStdin.code, 2);
  t.regex(noStdin.stderr, /--password-stdin/);
  const noUser = await ociferry(['login', 'registry.example', '--password-stdin'], {
    env,
    input: PASSWORD,
  });
  t.is(noUser.code, 2);
  t.regex(noUser.stderr, /-u USER/);
});

test('login and logout of a repository instead of a registry say which host to give', async (t) => {
  const { env } = await isolatedEnv(t);
  for (const command of ['login', 'logout']) {
    const result = await ociferry([command, '127.0.0.1:5403/some/repo'], { env });
    t.is(result.code, 2);
    t.regex(
      result.stderr,
      /expected a registry host\[:port\], not a repository: use "127\.0\.0\.1:5403"/,
    );
    t.notRegex(result.stderr, /not a number/);
  }
});

test('on a terminal, login asks for the user and the password and never echoes the password', async (t) => {
  const registry = await sharedBasic();
  const { env, dockerConfig } = await isolatedEnv(t);
  const typed = new Set<string>();
  const answer = (output: string, type: (keys: string) => void, prompt: string, keys: string) => {
    if (!typed.has(prompt) && output.includes(prompt)) {
      typed.add(prompt);
      type(keys);
    }
  };
  const { code, output } = await onTerminal(['login', registry.host], {
    env,
    onOutput: (output, type) => {
      answer(output, type, 'Username: ', 'alice\r');
      answer(output, type, 'Password: ', `${PASSWORD}\r`);
    },
  });
  t.is(code, 0, output);
  t.regex(output, /Username: .*alice/);
  t.false(output.includes(PASSWORD));
  t.deepEqual((await readConfig(dockerConfig)).auths, {
    [registry.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') },
  });
});

test('Ctrl-C at the password prompt saves nothing and exits with status 130', async (t) => {
  const { env, dockerConfig } = await isolatedEnv(t);
  let typed = false;
  const { code, output } = await onTerminal(['login', 'registry.example', '-u', 'alice'], {
    env,
    onOutput: (soFar, type) => {
      if (!typed && soFar.includes('Password: ')) {
        typed = true;
        type('sec\x03');
      }
    },
  });
  t.is(code, 130, output);
  t.regex(output, /error: login registry\.example: interrupted/);
  await t.throwsAsync(stat(path.join(dockerConfig, 'config.json')), { code: 'ENOENT' });
});

test('login follows the rule lookups follow: an empty credHelpers entry means the file, not credsStore', async (t) => {
  const registry = await sharedBasic();
  await pushFixture(registry, 'oci-image', 'app/single');
  const { env, dockerConfig } = await isolatedEnv(t);
  await mkdir(dockerConfig, { recursive: true });
  // As docker: credHelpers[host] exists, so credsStore (a helper not installed here) is not asked.
  const given = { credHelpers: { [registry.host]: '' }, credsStore: 'not-installed' };
  await writeFile(path.join(dockerConfig, 'config.json'), JSON.stringify(given));

  const login = await ociferry(['login', registry.host, '-u', 'alice', '--password-stdin'], {
    env,
    input: PASSWORD,
  });
  t.is(login.code, 0, login.stderr);
  const config = await readConfig(dockerConfig);
  t.deepEqual(config, {
    ...given,
    auths: { [registry.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } },
  });
  const inspect = await ociferry(['inspect', `${registry.host}/app/single:v1`], { env });
  t.is(inspect.code, 0, inspect.stderr);
});
