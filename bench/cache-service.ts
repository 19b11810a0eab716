/**
 * Cache service figures (issue targets in brackets), on the embedded database:
 *   node --import tsx bench/cache-service.ts [--records N] [--engines N] [--layers N]
 *     [--download-mib N] [--runs N]
 * - ImportCache of an N-record namespace (default 100k), called by curl: cold (right after a
 *   write) and warm (no change since the last import), 3 each [< 2 s]
 * - URL minting through the API from a process of its own (bench/lib/mint-load.ts), one call at
 *   a time and 8 at once [>= 1,000/s]
 * - a download of an N MiB blob (default 256) through a minted URL, against a GET of the same blob
 *   from a local registry in the same run, both drained by curl, runs alternated, median
 *   [>= 80% of the registry's]
 * - E engines exporting L layers each at once (default 20 x 50): p50/p99 of the metadata calls
 * Prints one JSON object. The load average is printed too: figures on a shared machine vary.
 * `--download-mib 0` leaves the download out.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { CredentialStore, RegistryClient } from '../src/registry/index.ts';
import { CacheServiceClient } from '../src/service/client.ts';
import { startCacheServer } from '../src/service/server.ts';
import { startRegistry } from '../test/helpers/registry.ts';
import { generated, generatedDescriptor } from '../test/registry/_support.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    engines: { type: 'string', default: '20' },
    layers: { type: 'string', default: '50' },
    database: { type: 'string' },
    'download-mib': { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
  },
});
const RECORDS = Number(values.records);
const ENGINES = Number(values.engines);
const LAYERS = Number(values.layers);
const DOWNLOAD_MIB = Number(values['download-mib']);
const RUNS = Number(values.runs);
const execFileAsync = promisify(execFile);
const TOKEN = 'bench-token-0123456789abcdef';

const sha = (text: string | Buffer) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const ms = (start: number) => Math.round((performance.now() - start) * 10) / 10;
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-bench-svc-'));
await writeFile(join(dataDir, 'tokens'), `bench rw ${TOKEN}\nengines rw ${TOKEN}-engines\n`);
const server = await startCacheServer({
  listen: '127.0.0.1:0',
  dataDir,
  database: values.database,
  tokensFile: join(dataDir, 'tokens'),
  log: (line) => {
    if (line.status >= 500) console.error(JSON.stringify(line));
  },
});
const client = new CacheServiceClient({ url: server.url, token: TOKEN });
const result: Record<string, unknown> = { loadavg: loadavg().map((l) => Math.round(l * 10) / 10) };
try {
  // A namespace of RECORDS records in chains of 100, every 10th with a result on one of 64 blobs.
  const blobs = Array.from({ length: 64 }, (_, i) => Buffer.from(`layer ${i}`.repeat(64)));
  for (const bytes of blobs)
    await client.uploadLayer({ digest: sha(bytes), size: bytes.length }, bytes);
  const seedStart = performance.now();
  const BATCH = 5000;
  for (let from = 0; from < RECORDS; from += BATCH) {
    const keys = Array.from({ length: Math.min(BATCH, RECORDS - from) }, (_, i) =>
      sha(`record ${from + i}`),
    );
    await client.updateCacheRecords({
      records: keys.map((digest, i) => ({
        digest,
        results: (from + i) % 10 === 0 ? [{ id: `r${from + i}` }] : [],
      })),
      links: keys.flatMap((target, i) =>
        (from + i) % 100 === 0 ? [] : [{ source: sha(`record ${from + i - 1}`), target, input: 0 }],
      ),
    });
    await client.updateCacheLayers({
      results: keys.flatMap((recordDigest, i) => {
        if ((from + i) % 10 !== 0) return [];
        const bytes = blobs[(from + i) % blobs.length] as Buffer;
        return [
          {
            recordDigest,
            layers: [
              {
                mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
                digest: sha(bytes),
                size: bytes.length,
              },
            ],
          },
        ];
      }),
    });
  }
  result.seedMs = ms(seedStart);
  // ImportCache as an engine calls it, from a process of its own (curl): cold, right after a
  // write (the document is built again), and warm (no change since the last import).
  const headers = join(dataDir, 'curl-headers');
  await writeFile(headers, `authorization: Bearer ${TOKEN}\n`, { mode: 0o600 });
  const importOnce = async () => {
    const cpu = process.cpuUsage();
    const { stdout } = await execFileAsync('curl', [
      '-sf',
      '-o',
      '/dev/null',
      '-H',
      `@${headers}`,
      '-w',
      '%{http_code} %{size_download} %{time_total}',
      `${server.url}/v1/import`,
    ]);
    const used = process.cpuUsage(cpu);
    const [status, size, seconds] = stdout.trim().split(' ').map(Number);
    if (status !== 200) throw new Error(`GET /v1/import: ${status}`);
    return {
      bytes: size ?? 0,
      ms: Math.round((seconds ?? 0) * 10000) / 10,
      cpuMs: Math.round((used.user + used.system) / 1000),
    };
  };
  const cold: Awaited<ReturnType<typeof importOnce>>[] = [];
  const warm: Awaited<ReturnType<typeof importOnce>>[] = [];
  for (let run = 0; run < 3; run++) {
    await client.updateCacheRecords({ records: [{ digest: sha(`written before import ${run}`) }] });
    cold.push(await importOnce());
    warm.push(await importOnce());
  }
  const parseStart = performance.now();
  const config = await client.importCache();
  result.importCache = {
    records: config.records.length,
    layers: config.layers.length,
    bytes: warm[0]?.bytes,
    // Wall time of the call as curl saw it; CPU of this process (service and embedded database)
    // while it ran: on a loaded machine the wall time is mostly waiting for a core.
    coldMs: cold.map((r) => r.ms),
    coldCpuMs: cold.map((r) => r.cpuMs),
    warmMs: warm.map((r) => r.ms),
    warmCpuMs: warm.map((r) => r.cpuMs),
    withClientParseMs: ms(parseStart),
    target: '< 2000 ms',
  };

  // URL minting, from a process of its own as engines mint: one call at a time, and 8 at once.
  const digest = sha(blobs[0] as Buffer);
  const mintLoad = async (concurrency: number) => {
    const cpu = process.cpuUsage();
    const { stdout } = await execFileAsync(process.execPath, [
      '--import',
      'tsx',
      join(import.meta.dirname, 'lib', 'mint-load.ts'),
      server.url,
      TOKEN,
      digest,
      '3000',
      String(concurrency),
    ]);
    const used = process.cpuUsage(cpu);
    const { perSecond } = JSON.parse(stdout) as { perSecond: number };
    return { perSecond, serviceCpuMs: Math.round((used.user + used.system) / 1000) };
  };
  const sequential = await mintLoad(1);
  const eightAtOnce = await mintLoad(8);
  let start = performance.now();
  for (let i = 0; i < 100_000; i++) server.signer.mint({ op: 'get', ns: 'bench', digest });
  const signerOnly = Math.round(100_000 / ((performance.now() - start) / 1000));
  result.urlMinting = {
    perSecondSequential: sequential.perSecond,
    perSecond8AtOnce: eightAtOnce.perSecond,
    // CPU of the service for 3,200 calls (200 of them warming up).
    serviceCpuMs: [sequential.serviceCpuMs, eightAtOnce.serviceCpuMs],
    signerOnlyPerSecond: signerOnly,
    target: '>= 1000/s',
  };

  if (DOWNLOAD_MIB > 0) result.download = await downloadComparison(client);

  // ENGINES engines exporting LAYERS layers each at once.
  const latencies: Record<string, number[]> = { records: [], uploadUrl: [], layers: [] };
  const timed = async <T>(name: string, call: () => Promise<T>) => {
    const t0 = performance.now();
    const value = await call();
    latencies[name]?.push(performance.now() - t0);
    return value;
  };
  start = performance.now();
  await Promise.all(
    Array.from({ length: ENGINES }, async (_, e) => {
      const engine = new CacheServiceClient({
        url: server.url,
        token: `${TOKEN}-engines`,
        engineID: `engine-${e}`,
      });
      const keys = Array.from({ length: LAYERS }, (_, i) => sha(`engine ${e} step ${i}`));
      const layers = keys.map((k) => Buffer.from(k.repeat(128)));
      const wanted = await timed('records', () =>
        engine.updateCacheRecords({
          records: keys.map((d, i) => ({ digest: d, results: [{ id: `e${e}-${i}` }] })),
          links: keys
            .slice(1)
            .map((target, i) => ({ source: keys[i] as string, target, input: 0 })),
        }),
      );
      for (const layer of layers) {
        const minted = await timed('uploadUrl', () =>
          engine.getLayerUploadUrl(sha(layer), layer.length),
        );
        await engine.putUrl(minted.url, layer.length, layer);
      }
      await timed('layers', () =>
        engine.updateCacheLayers({
          results: wanted.map(({ digest: d }) => {
            const i = keys.indexOf(d);
            return {
              recordDigest: d,
              layers: layers.slice(0, i + 1).map((l) => ({
                mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
                digest: sha(l),
                size: l.length,
              })),
            };
          }),
        }),
      );
    }),
  );
  const engines: Record<string, unknown> = {
    engines: ENGINES,
    layersEach: LAYERS,
    totalMs: ms(start),
  };
  for (const [name, list] of Object.entries(latencies)) {
    const sorted = [...list].sort((a, b) => a - b);
    engines[name] = {
      calls: sorted.length,
      p50Ms: Math.round(percentile(sorted, 50) * 10) / 10,
      p99Ms: Math.round(percentile(sorted, 99) * 10) / 10,
    };
  }
  result.concurrentEngines = engines;
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result, null, 2));

/**
 * MiB/s of a DOWNLOAD_MIB blob through a minted service URL and through a registry GET of the same
 * blob, RUNS each, alternated; both drained (no verification) by curl.
 */
async function downloadComparison(service: CacheServiceClient): Promise<Record<string, unknown>> {
  const size = DOWNLOAD_MIB * 1024 * 1024;
  const blob = await generatedDescriptor('service-download', size);
  await service.uploadLayer(blob, generated('service-download', size));
  const registry = await startRegistry(undefined, { auth: 'none' });
  try {
    const registryClient = new RegistryClient({ credentials: new CredentialStore({ env: {} }) });
    await registryClient
      .repository(registry.host, 'bench/download')
      .uploadBlob(blob, generated('service-download', size));
    // curl in its own process drains both: the service's thread serves and nothing else.
    const drain = async (url: string) => {
      const { stdout } = await execFileAsync('curl', [
        '-sf',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{size_download} %{speed_download}',
        url,
      ]);
      const [status, bytes, speed] = stdout.trim().split(' ').map(Number);
      if (status !== 200 || bytes !== size) {
        throw new Error(`GET ${new URL(url).pathname}: ${status}, ${bytes} bytes`);
      }
      return (speed ?? 0) / 1024 / 1024;
    };
    const viaService: number[] = [];
    const viaRegistry: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      viaRegistry.push(await drain(`${registry.url}/v2/bench/download/blobs/${blob.digest}`));
      viaService.push(await drain((await service.getLayerDownloadUrl(blob.digest)).url));
    }
    const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
    const serviceMiBs = Math.round(median(viaService) ?? 0);
    const registryMiBs = Math.round(median(viaRegistry) ?? 0);
    return {
      mib: DOWNLOAD_MIB,
      serviceMiBPerSecond: viaService.map(Math.round),
      registryMiBPerSecond: viaRegistry.map(Math.round),
      serviceToRegistry: Math.round((serviceMiBs / registryMiBs) * 100) / 100,
      target: '>= 0.8',
    };
  } finally {
    await registry.stop();
  }
}
