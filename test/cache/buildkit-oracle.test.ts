/**
 * The oracle: for each scenario a real BuildKit rebuilds v2 from v1's inline cache, and
 * `ociferry cache explain --build v2 --from v1` must have predicted every step's CACHED exactly.
 */
import test, { type ExecutionContext } from 'ava';
import { buildkitForTests } from '../helpers/buildkit.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import {
  contextRoot,
  dockerfileStages,
  ociferry,
  type PushedBuild,
  runScenario,
  SCENARIOS,
  type Scenario,
  type ScenarioRun,
  type ScenarioWorld,
  stepName,
} from './_real-buildkit.ts';
import { BLOB_PATH, client } from './_support.ts';

// Before any test is declared: ava starts the file on the tick after the first declaration.
const { buildkit } = await buildkitForTests(test);
const oracle = buildkit ? test.serial : test.skip;

let registry: TestRegistry;
let contexts: { dir: string; remove: () => Promise<void> };
let vars: Record<string, string>;
/** Builds shared between the scenarios (their v1 often is the same). */
const shared = { builds: new Map<string, Promise<PushedBuild>>(), baseLayers: 1 };
if (buildkit) {
  test.before(async () => {
    registry = await startRegistry();
    contexts = await contextRoot();
    vars = { base: `${registry.host}/base:1`, base2: `${registry.host}/base:2` };
    await buildkit.baseImage(vars.base as string);
    await buildkit.baseImage(vars.base2 as string, { 'etc/base-version': '2\n' });
  });
  test.after.always(() => Promise.all([registry?.stop(), contexts?.remove()]));
}

/** What `cache explain --json` prints. */
interface Explanation {
  steps: { digest: string; cached: boolean; reason?: unknown }[];
  cached: number;
  total: number;
  finalCached: boolean;
  requests: number;
}

/** `ociferry cache explain --build type=registry,ref=BUILD --from type=registry,ref=FROM --json`. */
async function explain(build: string, from: string): Promise<Explanation> {
  const args = ['cache', 'explain', '--build', `type=registry,ref=${build}`];
  const run = await ociferry([...args, '--from', `type=registry,ref=${from}`, '--json']);
  return JSON.parse(run.stdout) as Explanation;
}

/** Figures over all scenarios, logged by the last one. */
const totals = { scenarios: 0, steps: 0, predictedCached: 0, buildkitCached: 0 };

for (const scenario of SCENARIOS) {
  oracle(`explain predicts BuildKit's CACHED steps: ${scenario.title}`, async (t) => {
    if (!buildkit) return t.fail();
    const world: ScenarioWorld = {
      ...shared,
      buildkit,
      client: client(t),
      host: registry.host,
      vars,
      contexts: contexts.dir,
    };
    const run = await runScenario(world, scenario);
    const buildkitSteps = run.rebuild.steps.filter((step) => step.index >= 2);

    // BuildKit itself first: a drift of the real BuildKit shows here, apart from ociferry's part.
    t.deepEqual(
      buildkitSteps
        .filter((step) => step.cached)
        .map(stepName)
        .sort(),
      [...scenario.expectCached].sort(),
      `BuildKit's own CACHED steps:\n${run.rebuild.output}`,
    );

    const mark = await registry.mark();
    const explanation = await explain(run.v2, run.v1);
    compare(t, scenario, run, explanation);

    // Zero layer bytes: the only blobs read are image configs, never a layer.
    const layers = new Set(run.v2Cache.layers.map((layer) => layer.digest));
    const reads = await registry.requests({ method: 'GET', path: BLOB_PATH, since: mark });
    t.deepEqual(
      reads.filter((entry) => layers.has(entry.path.split('/').at(-1) as string)),
      [],
    );
  });
}

/** Every step BuildKit printed must have its prediction, and every prediction must equal it. */
function compare(
  t: ExecutionContext,
  scenario: Scenario,
  run: ScenarioRun,
  explanation: Explanation,
): void {
  const predicted = new Map(explanation.steps.map((step) => [step.digest, step]));
  const rows: string[] = [];
  const mismatches: string[] = [];
  // In build order: stages as the Dockerfile has them, steps by number.
  const stages = dockerfileStages(scenario.v2.Dockerfile as string);
  const vertices = run.rebuild.steps
    .filter((step) => step.index >= 2)
    .sort((a, b) => stages.indexOf(a.stage) - stages.indexOf(b.stage) || a.index - b.index);
  for (const vertex of vertices) {
    const name = stepName(vertex);
    const digests = [...run.names].filter(([, n]) => n === name).map(([digest]) => digest);
    if (digests.length === 0) {
      mismatches.push(`${name}: no record of ${run.v2} is this step`);
      continue;
    }
    for (const digest of digests) {
      const step = predicted.get(digest);
      const said = step === undefined ? 'absent' : step.cached ? 'CACHED' : 'runs';
      const did = vertex.cached ? 'CACHED' : 'runs';
      rows.push(
        `${name.padEnd(52)} ${digest.slice(7, 19)} ociferry: ${said.padEnd(6)} BuildKit: ${did}`,
      );
      if (said !== did) {
        mismatches.push(
          `${name} (${digest}): ociferry ${said} (${JSON.stringify(step?.reason)}), BuildKit ${did}`,
        );
      }
      totals.steps++;
      if (step?.cached) totals.predictedCached++;
      if (vertex.cached) totals.buildkitCached++;
    }
  }
  totals.scenarios++;
  t.log(`${scenario.name}:\n${rows.join('\n')}`);
  t.log(`so far: ${JSON.stringify(totals)}`);
  t.deepEqual(mismatches, [], `explain --json:\n${JSON.stringify(explanation, null, 1)}`);
  t.is(explanation.total, explanation.steps.length);
  t.is(explanation.cached, explanation.steps.filter((step) => step.cached).length);
}
