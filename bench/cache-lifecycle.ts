/**
 * Benchmark of cache merge and prune at scale, in process (no registry: what is measured is the
 * graph work, whose cost must stay linear in records + links). For each size, two caches of
 * that many records are generated, serialized as BuildKit writes them and saved to files; a
 * child process, run under GNU time for its peak RSS, then reads both files and times:
 *
 *   parse      stream-parse and validate both configs, read in 64 KiB chunks (opening the sources)
 *   merge      mergeCacheConfigs (deduplicated and sorted as BuildKit sorts)
 *   write      serialize and hash the merged config (the blob mergeCaches uploads)
 *   keep-last  pruneCacheConfig of the merge, --keep-last N builds, + serialize and hash
 *   1 MiB      pruneCacheConfig of the merge, --max-config-size 1 MiB, + serialize and hash
 *
 * Shape of a cache: builds of 50 steps (RUN/COPY records, each linked to the step before and,
 * with a selector, to the build's context record) on one shared base record; 16 variants of
 * every step's layer chain (800 layers); build b at minute 10b. The two caches share half their
 * builds (as a cache per platform or branch shares main's), so a merge deduplicates a third.
 *
 *   node --import tsx bench/cache-lifecycle.ts [--records 25000,100000] [--keep-last 100]
 *        [--node-arg=--max-semi-space-size=1]...
 *
 * Targets (issue 14): merging two caches of 100k records and pruning the result in under 5 s
 * and 600 MiB, cost linear in records + links (compare the sizes).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type CacheConfig,
  type CacheRecord,
  mergeCacheConfigs,
  parseCacheConfig,
  pruneCacheConfig,
  serializeCacheConfig,
  sortCacheConfig,
} from '../src/cache/index.ts';
import { digestBytes } from '../src/digest/index.ts';
import { measure, requireGnuTime } from './lib/measure.ts';

const STEPS = 50;
const VARIANTS = 16;
const MiB = 1024 * 1024;

interface Phase {
  readonly phase: string;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly rssMiB: number;
  readonly note: string;
}

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/** One cache: the builds `first` .. `first + builds - 1` (see the file comment). */
function generateCache(first: number, builds: number): CacheConfig {
  const layers = [];
  for (let variant = 0; variant < VARIANTS; variant++) {
    for (let step = 0; step < STEPS; step++) {
      layers.push({
        blob: sha(`layer-${variant}-${step}`),
        parent: step === 0 ? -1 : layers.length - 1,
      });
    }
  }
  const t0 = Date.UTC(2025, 0, 1);
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  const records: CacheRecord[] = [
    { digest: sha('base'), results: [{ layer: 0, createdAt: at(0) }], chains: [], inputs: [] },
  ];
  for (let build = first; build < first + builds; build++) {
    const variant = build % VARIANTS;
    const context = records.length;
    records.push({ digest: sha(`context-${build}`), results: [], chains: [], inputs: [] });
    for (let step = 0; step < STEPS; step++) {
      const previous = step === 0 ? 0 : records.length - 1;
      records.push({
        digest: sha(`build-${build}-step-${step}`),
        results: [
          {
            layer: variant * STEPS + step,
            createdAt: at(build * 600_000 + step * 1000),
          },
        ],
        chains: [],
        inputs: [[{ link: previous }], [{ selector: sha(`path-${step % 5}`), link: context }]],
      });
    }
  }
  return sortCacheConfig({ layers, records });
}

/** Parse a config file read in 64 KiB chunks, as a config arrives from a registry. */
async function parseFile(file: string): Promise<CacheConfig> {
  const stream = createReadStream(file, { highWaterMark: 64 * 1024 });
  return (await parseCacheConfig(stream, { limit: 64 * MiB })).config;
}

/** In the child: time each phase over the two serialized configs. */
async function child(fileA: string, fileB: string, keepLast: number): Promise<void> {
  const phases: Phase[] = [];
  const phase = async <T>(name: string, run: () => Promise<T> | T, note: (r: T) => string) => {
    const cpu = process.cpuUsage();
    const started = performance.now();
    const result = await run();
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    phases.push({
      phase: name,
      wallMs,
      cpuMs: (used.user + used.system) / 1000,
      rssMiB: process.memoryUsage().rss / MiB,
      note: note(result),
    });
    return result;
  };
  const [a, b] = await phase(
    'parse',
    () => Promise.all([parseFile(fileA), parseFile(fileB)]),
    ([x, y]) => `${x.records.length} + ${y.records.length} records`,
  );
  const written = (config: CacheConfig) => {
    const bytes = serializeCacheConfig(config);
    digestBytes(bytes);
    return bytes.length;
  };
  const merged = await phase(
    'merge',
    () => mergeCacheConfigs([a, b]),
    ({ stats }) => `${stats.records} records, ${stats.results} results, ${stats.layers} layers`,
  );
  await phase(
    'write merged',
    () => written(merged.config),
    (size) => `config ${(size / MiB).toFixed(1)} MiB, serialized and hashed`,
  );
  await phase(
    `keep-last ${keepLast}`,
    () => {
      const pruned = pruneCacheConfig(merged.config, { keepLast });
      return { pruned, size: written(pruned.config) };
    },
    ({ pruned, size }) =>
      `kept ${pruned.kept.records} records, ${pruned.kept.results} results; config ${(size / MiB).toFixed(2)} MiB`,
  );
  await phase(
    '1 MiB',
    () => {
      const pruned = pruneCacheConfig(merged.config, { maxConfigSize: MiB });
      return { pruned, size: written(pruned.config) };
    },
    ({ pruned, size }) =>
      `kept ${pruned.kept.records} records, dropped ${pruned.droppedForConfigSize} results; config ${size} B`,
  );
  process.stdout.write(`${JSON.stringify(phases)}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '25000,100000' },
      'keep-last': { type: 'string', default: '100' },
      'node-arg': { type: 'string', multiple: true, default: [] },
      child: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const keepLast = Number(values['keep-last']);
  if (values.child) {
    const [fileA = '', fileB = ''] = process.argv.slice(-2);
    await child(fileA, fileB, keepLast);
    return;
  }
  await requireGnuTime();
  const sizes = (values.records as string).split(',').map(Number);
  const nodeArgs = values['node-arg'] as string[];
  const work = await mkdtemp(join(tmpdir(), 'ociferry-bench-lifecycle-'));
  console.log(
    `cache merge + prune, in process; node ${process.version}${nodeArgs.length ? ` ${nodeArgs.join(' ')}` : ''}`,
  );
  try {
    for (const size of sizes) {
      const builds = Math.floor((size - 1) / (STEPS + 1));
      const files = [join(work, `a-${size}.json`), join(work, `b-${size}.json`)] as const;
      const a = generateCache(0, builds);
      const b = generateCache(Math.floor(builds / 2), builds);
      await writeFile(files[0], serializeCacheConfig(a));
      await writeFile(files[1], serializeCacheConfig(b));
      const links = a.records.reduce((n, r) => n + r.inputs.flat().length, 0);
      const run = await measure(process.execPath, [
        ...nodeArgs,
        '--import',
        'tsx',
        new URL(import.meta.url).pathname,
        '--child',
        '--keep-last',
        String(keepLast),
        ...files,
      ]);
      const phases = JSON.parse(run.stdout) as Phase[];
      console.log(
        `\n2 caches x ${a.records.length} records (${links} links, ${builds} builds each)`,
      );
      for (const p of phases) {
        console.log(
          `  ${p.phase.padEnd(13)} ${p.wallMs.toFixed(0).padStart(6)} ms wall ${p.cpuMs.toFixed(0).padStart(6)} ms cpu  rss ${p.rssMiB.toFixed(0).padStart(4)} MiB  ${p.note}`,
        );
      }
      const total = (names: readonly string[]) =>
        phases.filter((p) => names.includes(p.phase)).reduce((ms, p) => ms + p.wallMs, 0);
      const pipeline = ['merge', 'write merged', `keep-last ${keepLast}`];
      const cpu = (names: readonly string[]) =>
        phases.filter((p) => names.includes(p.phase)).reduce((ms, p) => ms + p.cpuMs, 0);
      console.log(
        `  merge + write + keep-last: ${total(pipeline).toFixed(0)} ms wall, ${cpu(pipeline).toFixed(0)} ms cpu (with parse: ${total(['parse', ...pipeline]).toFixed(0)} ms wall, ${cpu(['parse', ...pipeline]).toFixed(0)} ms cpu); peak RSS ${(run.maxRssKiB / 1024).toFixed(0)} MiB (GNU time, whole child); load average ${loadavg()[0]?.toFixed(1)}`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
