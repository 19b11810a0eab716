import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CacheServiceClient } from '../../src/service/client.ts';
import { CacheServiceError } from '../../src/service/errors.ts';
import { cliCommand } from '../cli/support/cli.ts';
import { startRegistry } from '../helpers/registry.ts';
import { blob, copyPgliteTemplate, exportBuild, key } from './_support.ts';

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** `ociferry cache serve` as a child process; resolves once it says where it listens. */
async function serve(t: ExecutionContext, args: string[]): Promise<Served> {
  const command = await cliCommand(['cache', 'serve', '--listen', '127.0.0.1:0', ...args]);
  const child = spawn(command.file, command.args, {
    env: command.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  // 'close', not 'exit': stderr may still be on its way when the child has exited.
  const exited = new Promise<number | null>((done) => child.once('close', (code) => done(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise<string>((done, fail) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /serving the cache service at (\S+)/.exec(text);
      if (match?.[1]) done(match[1]);
    });
    void exited.then(() => fail(new Error(`serve exited early:\n${text}`)));
  });
  return { child, url, stderr: () => text, exited };
}

test('kill -9 during uploads, then restart: no partial blob, no record on a missing blob, all committed intact', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-serve-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  // The database is a copy of the run's, made by the function serve calls on an empty directory:
  // making it costs seconds of CPU.
  await copyPgliteTemplate(join(dataDir, 'db'));
  const first = await serve(t, ['--data', dataDir]);
  t.regex(
    first.stderr(),
    new RegExp(`token for namespace "default" is in ${join(dataDir, 'token')}`),
  );
  t.is((await stat(join(dataDir, 'token'))).mode & 0o777, 0o600);
  const token = (await readFile(join(dataDir, 'token'), 'utf8')).trim();
  t.false(first.stderr().includes(token), 'the token is never printed');
  const client = new CacheServiceClient({ url: first.url, token });
  const committed = await exportBuild(client, ['base', 'one']);

  // Half of two uploads sent, then the service is killed.
  const partial = [blob(256 * 1024), blob(256 * 1024)];
  await client.updateCacheRecords({ records: [{ digest: key('two'), results: [{ id: 'r2' }] }] });
  const before = await client.importCache();
  const urls = await Promise.all(partial.map((p) => client.getLayerUploadUrl(p.digest, p.size)));
  const sent = urls.map((minted, i) => {
    const layer = partial[i];
    if (!layer) throw new Error('no layer');
    const req = httpRequest(minted.url, {
      method: 'PUT',
      headers: { 'content-length': layer.size },
    });
    req.on('error', () => {});
    req.write(layer.bytes.subarray(0, layer.size / 2));
    return req;
  });
  // Let the service receive the halves before it dies.
  await new Promise((r) => setTimeout(r, 1000));
  first.child.kill('SIGKILL');
  await first.exited;
  for (const req of sent) req.destroy();

  const second = await serve(t, ['--data', dataDir]);
  const again = new CacheServiceClient({ url: second.url, token });
  t.deepEqual(await again.importCache(), before, 'everything committed before is intact');
  for (const p of partial) {
    const error = await again.getLayerDownloadUrl(p.digest).catch((e: unknown) => e);
    t.true(error instanceof CacheServiceError && error.code === 'BLOB_UNKNOWN');
  }
  const files = await readdir(join(dataDir, 'blobs', 'blobs', 'sha256'));
  for (const p of partial)
    t.false(files.includes(p.digest.slice(7)), 'no partial blob under its name');
  const layer = committed.layers[1];
  if (!layer) throw new Error('no layer');
  const chunks: Buffer[] = [];
  for await (const c of await again.getUrl((await again.getLayerDownloadUrl(layer.digest)).url))
    chunks.push(c as Buffer);
  t.deepEqual(Buffer.concat(chunks), layer.bytes);
  // A report of layers that never arrived is refused; uploading them afterwards works.
  const report = {
    results: [
      {
        recordDigest: key('two'),
        layers: partial.map((p) => ({ mediaType: 'x', digest: p.digest, size: p.size })),
      },
    ],
  };
  const refused = await again.updateCacheLayers(report).catch((e: unknown) => e);
  t.true(refused instanceof CacheServiceError && refused.code === 'BLOB_UNKNOWN');
  for (const p of partial) await again.uploadLayer(p, p.bytes);
  t.is(await again.updateCacheLayers(report), 1);

  second.child.kill('SIGTERM');
  t.is(await second.exited, 0, 'SIGTERM is a graceful stop');
  t.regex(second.stderr(), /cache service stopped/);
});

test('tokens from --tokens are reloaded on SIGHUP; logs hold no token', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-serve-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const tokens = join(dataDir, 'tokens');
  const oldToken = 'old-token-0123456789abcdef';
  const newToken = 'new-token-0123456789abcdef';
  await writeFile(tokens, `team rw ${oldToken}\n`);
  // A copy of the run's database, as above.
  await mkdir(join(dataDir, 'data'));
  await copyPgliteTemplate(join(dataDir, 'data', 'db'));
  const served = await serve(t, ['--data', join(dataDir, 'data'), '--tokens', tokens]);
  const old = new CacheServiceClient({ url: served.url, token: oldToken });
  t.is((await old.getConfig()).namespace, 'team');
  await writeFile(tokens, `team ro ${newToken}\n`);
  served.child.kill('SIGHUP');
  const fresh = new CacheServiceClient({ url: served.url, token: newToken });
  for (let i = 0; ; i++) {
    const answer = await fresh.getConfig().catch((e: unknown) => e);
    if (!(answer instanceof Error)) {
      t.is((answer as { access: string }).access, 'ro');
      break;
    }
    if (i > 100) throw answer;
    await new Promise((r) => setTimeout(r, 100));
  }
  const refused = await old.getConfig().catch((e: unknown) => e);
  t.true(refused instanceof CacheServiceError && refused.code === 'UNAUTHORIZED');
  served.child.kill('SIGTERM');
  await served.exited;
  const log = served.stderr();
  t.false(log.includes(oldToken) || log.includes(newToken));
  t.regex(log, /"path":"\/v1\/config","status":401/);
});

test('serve applies its retention limits on its interval and logs each run', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-serve-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  await copyPgliteTemplate(join(dataDir, 'db'));
  const served = await serve(t, [
    '--data',
    dataDir,
    '--keep-last',
    '1',
    '--prune-interval',
    '500ms',
  ]);
  const token = (await readFile(join(dataDir, 'token'), 'utf8')).trim();
  const client = new CacheServiceClient({ url: served.url, token });
  await exportBuild(client, ['old']);
  await new Promise((r) => setTimeout(r, 5));
  await exportBuild(client, ['new']);
  const runs = () =>
    served
      .stderr()
      .split('\n')
      .filter((line) => line.includes('"event":"retention"'))
      .map((line) => JSON.parse(line) as { resultsDropped: number });
  while (!runs().some((run) => run.resultsDropped > 0)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const config = await client.importCache();
  t.deepEqual(
    config.records.filter((r) => r.results.length > 0).map((r) => r.digest),
    [key('new')],
  );
  t.false(served.stderr().includes('retention failed'));
  served.child.kill('SIGTERM');
  t.is(await served.exited, 0);
});

test('serve --blobs type=registry keeps the blobs in a registry repository; a --blobs without its ref is a usage error', async (t) => {
  const registry = await startRegistry(t);
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-serve-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  await copyPgliteTemplate(join(dataDir, 'db'));
  const ref = `${registry.host}/cache/blobs`;
  const served = await serve(t, ['--data', dataDir, '--blobs', `type=registry,ref=${ref}`]);
  const token = (await readFile(join(dataDir, 'token'), 'utf8')).trim();
  const client = new CacheServiceClient({ url: served.url, token });
  const { layers } = await exportBuild(client, ['base', 'one']);
  for (const layer of layers) {
    const held = await fetch(`${registry.url}/v2/cache/blobs/blobs/${layer.digest}`, {
      method: 'HEAD',
    });
    t.is(held.status, 200, `the registry holds ${layer.digest}`);
    const chunks: Buffer[] = [];
    const url = (await client.getLayerDownloadUrl(layer.digest)).url;
    for await (const chunk of await client.getUrl(url)) chunks.push(chunk as Buffer);
    t.deepEqual(Buffer.concat(chunks), layer.bytes);
  }
  t.deepEqual(await readdir(dataDir).then((names) => names.includes('blobs')), false);
  served.child.kill('SIGTERM');
  t.is(await served.exited, 0);

  const usage = await cliCommand(['cache', 'serve', '--data', dataDir, '--blobs', 'type=registry']);
  const refused = spawn(usage.file, usage.args, {
    env: usage.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  refused.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  t.is(await new Promise((done) => refused.once('close', done)), 2);
  t.regex(stderr, /--blobs wants type=local,dest=DIR or type=registry,ref=HOST\/REPO/);
});
