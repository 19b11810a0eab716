/**
 * Shared set-up of the tests against a real BuildKit: the oracle scenarios (Dockerfiles v1 -> v2),
 * build contexts written into temp dirs, and the mapping from cache records to BuildKit's step
 * vertices (record result -> image layer -> history entry -> `[stage k/n] INSTRUCTION`).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { CacheImportCache, type CacheSource, openCacheSource } from '../../src/cache/index.ts';
import { runCli } from '../../src/cli/program.ts';
import { digestBytes } from '../../src/digest/index.ts';
import type { RegistryClient } from '../../src/registry/index.ts';
import type { RemoteImage } from '../../src/remote/remote-image.ts';
import type { BuildResult, BuildStep, TestBuildkit } from '../helpers/buildkit.ts';

/** The files of one build context; `Dockerfile` may say `{{base}}` and `{{base2}}`. */
export type BuildFiles = Readonly<Record<string, string>>;

/** A v1 -> v2 change whose rebuild BuildKit decides and ociferry predicts. */
export interface Scenario {
  /** Short name: the repository of its images. */
  readonly name: string;
  readonly title: string;
  /** When set, v1 is built with `--cache-from` an image of v0 (so v1's cache came from a cache). */
  readonly v0?: BuildFiles;
  readonly v1: BuildFiles;
  readonly v2: BuildFiles;
  /** BuildKit's CACHED steps when v2 is rebuilt from v1 (checked first, so a drift is seen). */
  readonly expectCached: readonly string[];
}

/** The single-stage Dockerfile most scenarios vary. */
const STEPS = [
  'COPY a.txt /a.txt',
  'RUN echo one > /one',
  'COPY c.txt /c.txt',
  'RUN cat /a.txt /c.txt > /all',
] as const;

function dockerfile(steps: readonly string[], base = '{{base}}'): string {
  return [`FROM ${base}`, ...steps, ''].join('\n');
}

function files(steps: readonly string[], c = 'c1\n', base?: string): BuildFiles {
  return { Dockerfile: dockerfile(steps, base), 'a.txt': 'a\n', 'c.txt': c };
}

const MULTISTAGE = (builderRun: string, finalRun: string): BuildFiles => ({
  Dockerfile: [
    'FROM {{base}} AS builder',
    'COPY a.txt /a.txt',
    builderRun,
    'FROM {{base}}',
    'COPY b.txt /b.txt',
    'COPY --from=builder /built /built',
    finalRun,
    '',
  ].join('\n'),
  'a.txt': 'a\n',
  'b.txt': 'b\n',
});
const BUILDER_RUN = 'RUN cat /a.txt > /built';
const FINAL_RUN = 'RUN cat /built /b.txt > /final';

const [COPY_A, RUN_ONE, COPY_C, RUN_ALL] = STEPS;

/**
 * The oracle scenarios of the issue (content, RUN, base, added, removed, reordered, one stage of a
 * multi-stage build, a cache written by a `--cache-from` build) and a few more.
 */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'unchanged',
    title: 'nothing changed',
    v1: files(STEPS),
    v2: files(STEPS),
    expectCached: [`[2/5] ${COPY_A}`, `[3/5] ${RUN_ONE}`, `[4/5] ${COPY_C}`, `[5/5] ${RUN_ALL}`],
  },
  {
    name: 'content',
    title: "a file's content changed",
    v1: files(STEPS, 'c1\n'),
    v2: files(STEPS, 'c2\n'),
    expectCached: [`[2/5] ${COPY_A}`, `[3/5] ${RUN_ONE}`],
  },
  {
    name: 'run',
    title: 'a RUN command changed',
    v1: files(STEPS),
    v2: files([COPY_A, 'RUN echo uno > /one', COPY_C, RUN_ALL]),
    expectCached: [`[2/5] ${COPY_A}`],
  },
  {
    name: 'base',
    title: 'the base image changed',
    v1: files(STEPS),
    v2: files(STEPS, 'c1\n', '{{base2}}'),
    expectCached: [],
  },
  {
    name: 'added',
    title: 'a step added in the middle',
    v1: files(STEPS),
    v2: files([COPY_A, RUN_ONE, 'RUN echo extra > /extra', COPY_C, RUN_ALL]),
    expectCached: [`[2/6] ${COPY_A}`, `[3/6] ${RUN_ONE}`],
  },
  {
    name: 'removed',
    title: 'a step removed',
    v1: files(STEPS),
    v2: files([COPY_A, COPY_C, RUN_ALL]),
    expectCached: [`[2/4] ${COPY_A}`],
  },
  {
    name: 'reordered',
    title: 'two steps reordered',
    v1: files(STEPS),
    v2: files([COPY_A, COPY_C, RUN_ONE, RUN_ALL]),
    expectCached: [`[2/5] ${COPY_A}`],
  },
  {
    name: 'stage-final',
    title: 'a multi-stage build whose final stage changed',
    v1: MULTISTAGE(BUILDER_RUN, FINAL_RUN),
    v2: MULTISTAGE(BUILDER_RUN, 'RUN cat /b.txt /built > /final'),
    // The builder's records have no result in an inline cache; BuildKit still counts them CACHED
    // because COPY --from, which needs them, hits.
    expectCached: [
      '[builder 2/3] COPY a.txt /a.txt',
      `[builder 3/3] ${BUILDER_RUN}`,
      '[stage-1 2/4] COPY b.txt /b.txt',
      '[stage-1 3/4] COPY --from=builder /built /built',
    ],
  },
  {
    name: 'stage-builder',
    title: 'a multi-stage build whose builder stage changed, not its output',
    v1: MULTISTAGE(BUILDER_RUN, FINAL_RUN),
    v2: MULTISTAGE('RUN cat /a.txt > /built && echo x > /x', FINAL_RUN),
    // The builder runs (its COPY's key matches but has no result); COPY --from then matches
    // through the content of /built.
    expectCached: [
      '[stage-1 2/4] COPY b.txt /b.txt',
      '[stage-1 3/4] COPY --from=builder /built /built',
      `[stage-1 4/4] ${FINAL_RUN}`,
    ],
  },
  {
    name: 'cache-from',
    title: 'a cache written by a --cache-from build, last step changed',
    v0: files(STEPS, 'c0\n'),
    v1: files(STEPS, 'c1\n'),
    v2: files([COPY_A, RUN_ONE, COPY_C, 'RUN cat /c.txt /a.txt > /all'], 'c1\n'),
    // v1 reused steps 2-3 from v0, so its cache has no result for them: CACHED all the same.
    expectCached: [`[2/5] ${COPY_A}`, `[3/5] ${RUN_ONE}`, `[4/5] ${COPY_C}`],
  },
  {
    name: 'cache-from-needed',
    title: 'a cache written by a --cache-from build, a step without result needed',
    v0: files(STEPS, 'c0\n'),
    v1: files(STEPS, 'c1\n'),
    v2: files([COPY_A, 'RUN echo uno > /one', COPY_C, RUN_ALL], 'c1\n'),
    // COPY a.txt's key matches, but it has no result and the changed RUN needs it: it runs.
    expectCached: [],
  },
];

/** A temporary directory for build contexts, and its removal. */
export async function contextRoot(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-contexts-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Write a build context into a new directory under `root` and return its path. */
export async function writeContext(
  root: string,
  buildFiles: BuildFiles,
  vars: Readonly<Record<string, string>>,
): Promise<string> {
  const dir = await mkdtemp(path.join(root, 'context-'));
  for (const [name, content] of Object.entries(buildFiles)) {
    const text = content.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => vars[key] ?? whole);
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

/** The stages of a Dockerfile as BuildKit names them in its progress: `''` for a single stage. */
export function dockerfileStages(text: string): string[] {
  const froms = text.split('\n').filter((line) => /^FROM\s/i.test(line));
  if (froms.length === 1 && !/\sAS\s/i.test(froms[0] as string)) return [''];
  return froms.map((line, i) => /\sAS\s+(\S+)/i.exec(line)?.[1] ?? `stage-${i}`);
}

/** A step vertex's name without the FROM's `@sha256:…` pin (present after a wipe). */
export function stepName(step: BuildStep): string {
  return step.name.replace(/@sha256:[0-9a-f]{64}$/, '');
}

/** Opens the inline cache of `ref` with a fresh import cache (nothing reused between builds). */
export function openInline(ref: string, client: RegistryClient): Promise<CacheSource> {
  return openCacheSource(`type=registry,ref=${ref}`, { client, cache: new CacheImportCache() });
}

/**
 * Names of the records of an inline cache that have a result: the record's result layer i is the
 * image's layer i, whose non-empty history entry is made by the step `[stage k/n]` with
 * k = i - baseLayers + 2. The step keyword (COPY, RUN) of history and vertex must agree.
 */
export async function namesOfResults(
  source: CacheSource,
  build: BuildResult,
  stage: string,
  baseLayers: number,
): Promise<Map<string, string>> {
  const image = source.remote as RemoteImage;
  const config = await image.config();
  const history = (config.history ?? []).filter((entry) => entry.empty_layer !== true);
  const steps = build.steps
    .filter((step) => step.stage === stage && step.index >= 2)
    .sort((a, b) => a.index - b.index);
  if (history.length !== baseLayers + steps.length) {
    throw new Error(
      `${image.ref}: ${history.length} layer history entries for ${baseLayers} base layers and ${steps.length} steps`,
    );
  }
  const names = new Map<string, string>();
  for (const record of source.config.records) {
    for (const result of record.results) {
      const step = steps[result.layer - baseLayers];
      const createdBy = String(history[result.layer]?.created_by ?? '');
      if (step === undefined)
        throw new Error(`${image.ref}: result layer ${result.layer} is no step`);
      if (createdBy.split(' ')[0] !== step.instruction.split(' ')[0]) {
        throw new Error(`${image.ref}: layer ${result.layer} is "${createdBy}", not ${step.name}`);
      }
      names.set(record.digest, step.name);
    }
  }
  return names;
}

/** Digests of the records that have inputs: the steps (the others are sources and contents). */
export function recordsWithInputs(source: CacheSource): Set<string> {
  return new Set(source.config.records.filter((r) => r.inputs.length > 0).map((r) => r.digest));
}

/** Context of a scenario run: the builder, the registry host, the base image references. */
export interface ScenarioWorld {
  readonly buildkit: TestBuildkit;
  readonly client: RegistryClient;
  readonly host: string;
  readonly vars: Readonly<Record<string, string>>;
  /** Where build contexts are written. */
  readonly contexts: string;
  /** Layers of the base images (all the same count). */
  readonly baseLayers: number;
  /** Builds made so far, by what was built: scenarios share their v1 images. */
  readonly builds: Map<string, Promise<PushedBuild>>;
}

/** A build made after a wipe and pushed. */
export interface PushedBuild {
  readonly ref: string;
  readonly build: BuildResult;
}

/** What the BuildKit side of a scenario found. */
export interface ScenarioRun {
  readonly v1: string;
  readonly v2: string;
  /** The cache of v2 built alone: the build's own records. */
  readonly v2Cache: CacheSource;
  /** Record digest -> step vertex name, for every record of v2 that has inputs. */
  readonly names: ReadonlyMap<string, string>;
  /** The rebuild of v2 with `--cache-from v1` after a wipe. */
  readonly rebuild: BuildResult;
}

/**
 * Wipe, build `buildFiles` (from `cacheFrom` when given, only `target` when given) and push it;
 * once per world for the same input.
 */
function pushedBuild(
  world: ScenarioWorld,
  buildFiles: BuildFiles,
  options: { cacheFrom?: string; target?: string } = {},
): Promise<PushedBuild> {
  const key = JSON.stringify([buildFiles, options.cacheFrom ?? '', options.target ?? '']);
  let pushed = world.builds.get(key);
  if (pushed === undefined) {
    const tag = `${world.host}/oracle/build:${digestBytes(Buffer.from(key)).slice(7, 23)}`;
    pushed = (async () => {
      const context = await writeContext(world.contexts, buildFiles, world.vars);
      await world.buildkit.wipe();
      const build = await world.buildkit.build({
        context,
        tag,
        cacheFrom: options.cacheFrom ? [options.cacheFrom] : [],
        ...(options.target ? { target: options.target } : {}),
      });
      await world.buildkit.push(tag);
      return { ref: tag, build };
    })();
    world.builds.set(key, pushed);
  }
  return pushed;
}

/**
 * Build v1 (from v0's cache when the scenario has one) and push it; build v2 alone and push it;
 * build every other stage of v2 alone to name its records; wipe; rebuild v2 with `--cache-from v1`.
 * Builds of the same input are shared between scenarios.
 */
export async function runScenario(world: ScenarioWorld, scenario: Scenario): Promise<ScenarioRun> {
  const v0 = scenario.v0 ? await pushedBuild(world, scenario.v0) : undefined;
  const v1 = await pushedBuild(world, scenario.v1, v0 ? { cacheFrom: v0.ref } : {});
  const v2 = await pushedBuild(world, scenario.v2);
  const stages = dockerfileStages(scenario.v2.Dockerfile as string);
  const v2Cache = await openInline(v2.ref, world.client);
  const names = await namesOfResults(v2Cache, v2.build, stages.at(-1) as string, world.baseLayers);
  for (const stage of stages.slice(0, -1)) {
    const own = await pushedBuild(world, scenario.v2, { target: stage });
    const source = await openInline(own.ref, world.client);
    for (const [digest, name] of await namesOfResults(source, own.build, stage, world.baseLayers)) {
      names.set(digest, name);
    }
  }
  for (const digest of recordsWithInputs(v2Cache)) {
    if (!names.has(digest)) throw new Error(`${v2.ref}: no step vertex found for record ${digest}`);
  }

  await world.buildkit.wipe();
  const context = await writeContext(world.contexts, scenario.v2, world.vars);
  const rebuild = await world.buildkit.build({ context, cacheFrom: [v1.ref] });
  return { v1: v1.ref, v2: v2.ref, v2Cache, names, rebuild };
}

/** How an in-process CLI run ended. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `ociferry ARGS…` in this process (no credentials from the machine); throws unless it exits 0. */
export async function ociferry(args: readonly string[]): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const code = await runCli(args, {
    stdout,
    stderr,
    stdin: Readable.from([]),
    env: { ...process.env, DOCKER_CONFIG: '/nonexistent', REGISTRY_AUTH_FILE: '/nonexistent' },
  });
  const run = {
    code,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
  };
  if (code !== 0) throw new Error(`ociferry ${args.join(' ')} exited ${code}: ${run.stderr}`);
  return run;
}
