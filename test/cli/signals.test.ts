import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { cliCommand, tempDir } from './support/cli.ts';

/** The registry of every test here; the upload test has repositories of its own. */
const shared = sharedRegistry(test);

/** A CLI run whose process the test signals; its stderr is collected. */
async function spawnCli(args: string[]): Promise<{ child: ChildProcess; stderr: () => string }> {
  const command = await cliCommand(args);
  const child = spawn(command.file, command.args, {
    env: command.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, stderr: () => stderr };
}

/** Poll `check` until it holds; fails if the process ended first. */
async function until(child: ChildProcess, check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the CLI ended (${child.exitCode ?? child.signalCode}) before the state`);
    }
    await sleep(20);
  }
}

/** Every file name under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.map((entry) => path.basename(entry));
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} during a copy into a layout removes its temp files and exits ${signal === 'SIGTERM' ? 143 : 130}`, async (t) => {
    const registry = await shared();
    const pushed = await pushFixture(registry, 'oci-image', 'app/single');
    const layer = pushed.blobs[1] ?? '';
    const proxy = await startFaultProxy(t, registry.url, [
      { method: 'GET', path: new RegExp(`/blobs/${layer}`), action: { stallAfterBytes: 100 } },
    ]);
    const dir = path.join(await tempDir(t), 'layout');
    const { child, stderr } = await spawnCli([
      'copy',
      `${proxy.host}/app/single:v1`,
      `oci:${dir}:v1`,
    ]);
    t.teardown(() => child.kill('SIGKILL'));
    await until(child, async () => (await filesUnder(dir)).some((f) => f.startsWith('.tmp-')));

    child.kill(signal);
    // 'close', not 'exit': stderr may still be on its way when the child has exited.
    const [code] = await once(child, 'close');
    t.is(code, signal === 'SIGTERM' ? 143 : 130, stderr());
    t.regex(stderr(), /^error: copy .*: interrupted$/m);
    t.deepEqual(
      (await filesUnder(dir)).filter((f) => f.startsWith('.tmp-')),
      [],
      'no temp file is left',
    );
  });
}

test('SIGTERM during an upload cancels the upload session at the registry', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'oci-image', 'upload/single');
  const layer = pushed.blobs[1] ?? '';
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: new RegExp(`/blobs/${layer}`), action: { stallAfterBytes: 100 } },
  ]);
  const mark = await registry.mark();
  // The source goes through the proxy, so its host differs from the destination's: no mount.
  const { child, stderr } = await spawnCli([
    'copy',
    `${proxy.host}/upload/single:v1`,
    `${registry.host}/upload/copy:v1`,
  ]);
  t.teardown(() => child.kill('SIGKILL'));
  const uploadStarted = async () =>
    (
      await registry.requests({
        method: 'POST',
        path: /\/upload\/copy\/blobs\/uploads\/$/,
        since: mark,
      })
    ).length > 0 && proxy.forwarded.some((r) => r.path.includes(layer));
  await until(child, uploadStarted);

  child.kill('SIGTERM');
  const [code] = await once(child, 'close');
  t.is(code, 143, stderr());
  const cancelled = await registry.requests({
    method: 'DELETE',
    path: /\/upload\/copy\/blobs\/uploads\/./,
    since: mark,
  });
  t.true(cancelled.length >= 1, 'the open upload session was cancelled with DELETE');
});
