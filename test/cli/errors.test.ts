import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { CliContext } from '../../src/cli/context.ts';
import { reportError } from '../../src/cli/errors.ts';
import { parseReference } from '../../src/reference/index.ts';
import { networkError } from '../../src/registry/errors.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { refusedHost } from '../helpers/free-port.ts';
import { sharedRegistry, startRegistry } from '../helpers/registry.ts';
import { isolatedEnv, ociferry, ociferryProcess, tempDir } from './support/cli.ts';

const STACK_FRAME = /^\s+at /m;

/** stderr as lines, the trailing newline dropped. */
function lines(stderr: string): string[] {
  return stderr.trimEnd().split('\n');
}

/** The registries of the tests that need none of their own: they only read, or are refused. */
const shared = sharedRegistry(test);
const sharedBasic = sharedRegistry(test, { auth: 'basic' });

test('an unknown host gives one error line and a hint naming the host, no stack trace', async (t) => {
  const result = await ociferry(['inspect', 'registry.nonexistent.invalid/app:v1']);
  t.is(result.code, 1);
  const [error, hint, ...rest] = lines(result.stderr);
  t.regex(
    error ?? '',
    /^error: inspect registry\.nonexistent\.invalid\/app:v1: .*(ENOTFOUND|EAI_AGAIN)/,
  );
  t.regex(hint ?? '', /^hint: the host name of registry\.nonexistent\.invalid does not resolve/);
  t.deepEqual(rest, []);
  t.notRegex(result.stderr, STACK_FRAME);
});

test('a refused connection names the host and port', async (t) => {
  const host = await refusedHost();
  // A process of its own: the exit status main() sets, 1.
  const result = await ociferryProcess(['tags', `${host}/app`]);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stderr).length, 2);
  t.regex(result.stderr, new RegExp(`^hint: nothing accepts connections at ${host}; `, 'm'));
  t.notRegex(result.stderr, STACK_FRAME);
});

test('a 404 names the repository and tag', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'app/single');
  const result = await ociferry(['inspect', `${registry.host}/app/single:v9`]);
  t.is(result.code, 1);
  const [error, hint] = lines(result.stderr);
  t.regex(error ?? '', /^error: inspect .*\/app\/single:v9: .*404 \(MANIFEST_UNKNOWN\)/);
  t.is(
    hint,
    `hint: check the repository and tag (${registry.host}/app/single:v9); 'ociferry tags ${registry.host}/app/single' lists the tags`,
  );
});

test('a 401 hint names the credential source tried and never shows the password', async (t) => {
  const registry = await sharedBasic();
  const { env, dockerConfig } = await isolatedEnv(t);
  const password = 'wrong-pw-c0ffee';
  const auth = Buffer.from(`alice:${password}`).toString('base64');
  await mkdir(dockerConfig, { recursive: true });
  await writeFile(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({ auths: { [registry.host]: { auth } } }),
  );
  const ref = `${registry.host}/app/single:v1`;

  for (const args of [
    ['inspect', ref],
    ['--debug', 'inspect', ref],
  ]) {
    const result = await ociferry(args, { env });
    t.is(result.code, 1);
    t.regex(result.stderr, /^error: inspect .*401 \(UNAUTHORIZED\)/m);
    t.regex(
      result.stderr,
      new RegExp(
        `^hint: ${registry.host} refused the credentials from .*config\\.json auths\\["${registry.host}"\\]; run 'ociferry login ${registry.host}' or 'docker login ${registry.host}'`,
        'm',
      ),
    );
    for (const secret of [password, auth, 'Basic '])
      t.false(result.stderr.includes(secret), secret);
  }
  const quiet = await ociferry(['inspect', ref], { env });
  t.notRegex(quiet.stderr, STACK_FRAME, 'a stack trace only with --debug');
});

test('a 401 without credentials lists where ociferry looked', async (t) => {
  const registry = await sharedBasic();
  const { env } = await isolatedEnv(t);
  const result = await ociferry(['tags', `${registry.host}/app/single`], { env });
  t.is(result.code, 1);
  t.regex(
    result.stderr,
    new RegExp(
      `^hint: no credentials for ${registry.host} \\(looked in .*containers/auth\\.json.*docker/config\\.json.*\\); run 'ociferry login`,
      'm',
    ),
  );
});

test('a 401 error line leaves the advice to the hint line', async (t) => {
  const registry = await sharedBasic();
  const { env, dockerConfig } = await isolatedEnv(t);
  await mkdir(dockerConfig, { recursive: true });
  const auth = Buffer.from('alice:wrong-pw').toString('base64');
  await writeFile(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({ auths: { [registry.host]: { auth } } }),
  );
  const result = await ociferry(['tags', `${registry.host}/app/single`], { env });
  t.is(result.code, 1);
  const [error, hint, ...rest] = lines(result.stderr);
  t.regex(
    error ?? '',
    /^error: tags .*: GET http:\/\/.*\/tags\/list answered 401 \(UNAUTHORIZED\): authentication required$/,
  );
  t.regex(hint ?? '', /^hint: .* refused the credentials from .*; run 'ociferry login /);
  t.deepEqual(rest, []);
});

test('a push the credentials do not grant says the permission is missing, not to renew them', async (t) => {
  const registry = await startRegistry(t, {
    auth: 'token',
    users: {
      alice: { password: 'alice-secret-pw', grants: [{ repository: '*', actions: ['*'] }] },
      bob: { password: 'bob-secret-pw', grants: [{ repository: '*', actions: ['pull'] }] },
    },
  });
  await pushFixture(registry, 'oci-image', 'app/single');
  const { env, dockerConfig } = await isolatedEnv(t);
  await mkdir(dockerConfig, { recursive: true });
  const auth = Buffer.from('bob:bob-secret-pw').toString('base64');
  await writeFile(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({ auths: { [registry.host]: { auth } } }),
  );
  const result = await ociferry(
    ['copy', `${registry.host}/app/single:v1`, `${registry.host}/bob/copy:v1`],
    { env },
  );
  t.is(result.code, 1);
  const [error, hint, ...rest] = lines(result.stderr);
  t.regex(error ?? '', /^error: copy .* answered 401 \(UNAUTHORIZED\)/);
  t.notRegex(error ?? '', /; /, 'the advice is on the hint line only');
  t.regex(
    hint ?? '',
    new RegExp(
      `^hint: the credentials for ${registry.host} from .*config\\.json.* do not grant repository:bob/copy:[a-z,]*push[a-z,]*; log in as a user that has this permission$`,
    ),
  );
  t.notRegex(result.stderr, /renew|does not exist/);
  t.deepEqual(rest, []);
  t.false(result.stderr.includes('bob-secret-pw'));
});

test('a name that does not resolve is named in the hint as the host that failed', async (t) => {
  // Docker Hub's API host cannot be made to fail resolving here, so the CLI reports a real
  // resolver error for it as it would arrive.
  const failure = Object.assign(new Error('getaddrinfo ENOTFOUND registry-1.docker.io'), {
    code: 'ENOTFOUND',
  });
  const error = networkError(failure, 'GET', 'https://registry-1.docker.io/v2/');
  const stderr = new PassThrough();
  const ctx = new CliContext(
    { progress: 'none' },
    { stdout: new PassThrough(), stderr, stdin: new PassThrough(), env: {} },
    new AbortController().signal,
  );
  ctx.uses(parseReference('alpine'));
  t.is(await reportError(error, ctx, 'inspect docker.io/library/alpine'), 1);
  stderr.end();
  const text = (await stderr.toArray()).join('');
  t.regex(text, /^hint: the host name of registry-1\.docker\.io does not resolve; /m);
});

test('blob get with a malformed digest says the digest is invalid', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const result = await ociferry(['blob', 'get', `oci:${dir}@sha256:../..`]);
  t.is(result.code, 2);
  t.regex(result.stderr, /^error: oci:.*@sha256:\.\.\/\.\.: invalid digest "sha256:\.\.\/\.\."/m);
  t.notRegex(result.stderr, /expected REF@DIGEST/);
});
