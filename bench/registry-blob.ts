/**
 * Registry client figures for issue 3: throughput of a verified 64 MiB blob GET against curl on the
 * same blob (curl alone, and curl piped into sha256sum so both sides verify), and the requests a
 * cross-repository mount takes with token auth (cold client and warm client).
 *
 *   npx tsx bench/registry-blob.ts [--size-mib 64] [--runs 7]
 *
 * Everything runs against a throwaway local distribution registry on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import type { Readable } from 'node:stream';
import { parseArgs, promisify } from 'node:util';
import { CredentialStore, RegistryClient } from '../src/registry/index.ts';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.ts';
import { ALICE_PASSWORD, generated, generatedDescriptor } from '../test/registry/_support.ts';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;

function client(registry: TestRegistry): RegistryClient {
  const explicit =
    registry.auth === 'none'
      ? {}
      : {
          [registry.host]: {
            kind: 'basic' as const,
            username: 'alice',
            password: ALICE_PASSWORD,
          },
        };
  return new RegistryClient({ credentials: new CredentialStore({ env: {}, explicit }) });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Seconds `run` takes. */
async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function blobThroughput(sizeMiB: number, runs: number): Promise<void> {
  const registry = await startRegistry(undefined, { auth: 'none' });
  const c = client(registry);
  try {
    const size = sizeMiB * MiB;
    const blob = await generatedDescriptor('bench-blob', size);
    const repo = c.repository(registry.host, 'bench/blob');
    await repo.uploadBlob(blob, generated('bench-blob', size));
    const url = `${registry.url}/v2/bench/blob/blobs/${blob.digest}`;
    const expectedHex = blob.digest.slice('sha256:'.length);
    const tools: Record<string, () => Promise<unknown>> = {
      'ociferry fetchBlob (sha256 verified)': async () => {
        let bytes = 0;
        for await (const chunk of (await repo.fetchBlob(blob)) as Readable) bytes += chunk.length;
        if (bytes !== size) throw new Error(`read ${bytes} bytes`);
      },
      'curl -o /dev/null': () => execFileAsync('curl', ['-sSf', '-o', '/dev/null', url]),
      'curl | sha256sum': async () => {
        const { stdout } = await execFileAsync('bash', [
          '-o',
          'pipefail',
          '-c',
          `curl -sSf '${url}' | sha256sum`,
        ]);
        if (!stdout.startsWith(expectedHex)) throw new Error(`sha256sum said ${stdout}`);
      },
    };
    console.log(
      `blob GET: ${sizeMiB} MiB from ${registry.url}, median of ${runs} runs after 1 warm-up`,
    );
    for (const [name, run] of Object.entries(tools)) {
      await run();
      const seconds: number[] = [];
      for (let i = 0; i < runs; i++) seconds.push(await timed(run));
      const s = median(seconds);
      console.log(
        `  ${name.padEnd(38)} ${(sizeMiB / s).toFixed(0).padStart(6)} MiB/s  (${(s * 1000).toFixed(0)} ms)`,
      );
    }
  } finally {
    await c.close();
    await registry.stop();
  }
}

async function mountRequests(): Promise<void> {
  const registry = await startRegistry(undefined, { auth: 'token' });
  const seed = client(registry);
  try {
    const described = await Promise.all(
      ['mount-a', 'mount-b'].map((name) => generatedDescriptor(name, 1024)),
    );
    for (const [i, b] of described.entries()) {
      await seed
        .repository(registry.host, 'bench/src')
        .uploadBlob(b, generated(`mount-${'ab'[i]}`, 1024));
    }
    const c = client(registry);
    try {
      const dst = c.repository(registry.host, 'bench/dst');
      console.log(
        'mount with token auth (POST /v2/bench/dst/blobs/uploads/?mount=&from=bench/src):',
      );
      for (const [label, b] of [
        ['cold client', described[0]],
        ['warm client (token cached)', described[1]],
      ] as const) {
        const mark = await registry.mark();
        const tokensBefore = registry.tokenRequests.length;
        const before = c.requestCount;
        const result = await dst.mountBlob(b?.digest ?? '', 'bench/src');
        const logged = await registry.requests({ since: mark });
        const tokens = registry.tokenRequests.slice(tokensBefore);
        console.log(
          `  ${label.padEnd(27)} mounted=${result.mounted}: ${c.requestCount - before} HTTP requests ` +
            `(registry log: ${logged.map((e) => `${e.method} ${e.path} ${e.status}`).join(', ')}; ` +
            `token requests: ${tokens.map((tk) => tk.scopes.join(' ')).join(' | ') || 'none'})`,
        );
      }
    } finally {
      await c.close();
    }
  } finally {
    await seed.close();
    await registry.stop();
  }
}

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '64' },
    runs: { type: 'string', default: '7' },
  },
});
await blobThroughput(Number(values['size-mib']), Number(values.runs));
await mountRequests();
