import { spawn } from 'node:child_process';
import type { Metric, Scenario, SetupContext, Target, Tool, ToolRun } from './scenario.ts';

/** Median figures of one tool over its runs. */
export interface Medians {
  readonly wallMs: number;
  /** User + system CPU. */
  readonly cpuMs: number;
  readonly rssKiB: number;
}

/** A target and how ociferry's medians fared against it. */
export interface TargetOutcome {
  readonly target: Target;
  /** The ratio (`0.73`) or the peak RSS in MiB the target bounds. */
  readonly value: number;
  readonly pass: boolean;
}

/** Everything measured for one scenario. */
export interface ScenarioResult {
  readonly scenario: Scenario;
  readonly runs: Readonly<Record<Tool, readonly ToolRun[]>>;
  readonly medians: Readonly<Record<Tool, Medians>>;
  /** ociferry / skopeo, per metric. */
  readonly ratios: Readonly<Record<Metric, number>>;
  readonly outcomes: readonly TargetOutcome[];
}

/** Options of {@link runScenario}. */
export interface RunOptions extends SetupContext {
  /** Runs per tool, default 3. */
  readonly runs?: number;
  /** Progress lines go here; default stderr. */
  readonly log?: (line: string) => void;
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? Number.NaN) + upper) / 2;
}

function mediansOf(runs: readonly ToolRun[]): Medians {
  const pick = (f: (run: ToolRun) => number) => median(runs.map(f));
  return {
    wallMs: pick((r) => r.measurement.wallMs),
    cpuMs: pick((r) => r.measurement.userMs + r.measurement.sysMs),
    rssKiB: pick((r) => r.measurement.maxRssKiB),
  };
}

function metricOf(medians: Medians, metric: Metric): number {
  if (metric === 'wall') return medians.wallMs;
  if (metric === 'cpu') return medians.cpuMs;
  return medians.rssKiB;
}

function evaluate(target: Target, ratios: Record<Metric, number>, ours: Medians): TargetOutcome {
  if ('maxMiB' in target) {
    const value = ours.rssKiB / 1024;
    return { target, value, pass: value <= target.maxMiB };
  }
  const value = ratios[target.metric];
  return { target, value, pass: value <= target.maxRatio };
}

/** `sync`: write back every dirty page of the system, so that a run starts with none pending. */
function settleDisk(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sync', [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`sync exited ${code}`)),
    );
  });
}

/**
 * Set the scenario up, run both tools `runs` times each, alternating which goes first in each
 * round (skopeo, ociferry; then ociferry, skopeo; ...), and compare the medians with the targets.
 */
export async function runScenario(
  scenario: Scenario,
  options: RunOptions,
): Promise<ScenarioResult> {
  const { runs: count = 3, log = (line: string) => process.stderr.write(`${line}\n`) } = options;
  log(`${scenario.name}: setting up (${scenario.title})`);
  const prepared = await scenario.setup(options);
  const runs: Record<Tool, ToolRun[]> = { skopeo: [], ociferry: [] };
  try {
    for (let round = 0; round < count; round++) {
      const order: Tool[] = round % 2 === 0 ? ['skopeo', 'ociferry'] : ['ociferry', 'skopeo'];
      for (const tool of order) {
        // The previous run's writes (and the removal of its output) are not on the next one's bill.
        await settleDisk();
        const run = await prepared.run(tool, round);
        runs[tool].push(run);
        const m = run.measurement;
        log(
          `${scenario.name}: ${tool} run ${round + 1}/${count}: wall ${(m.wallMs / 1000).toFixed(2)} s, ` +
            `cpu ${((m.userMs + m.sysMs) / 1000).toFixed(2)} s, rss ${(m.maxRssKiB / 1024).toFixed(1)} MiB`,
        );
      }
    }
  } finally {
    await prepared.teardown();
  }
  const medians = { skopeo: mediansOf(runs.skopeo), ociferry: mediansOf(runs.ociferry) };
  const ratio = (metric: Metric) =>
    metricOf(medians.ociferry, metric) / metricOf(medians.skopeo, metric);
  const ratios = { wall: ratio('wall'), cpu: ratio('cpu'), rss: ratio('rss') };
  const outcomes = scenario.targets.map((t) => evaluate(t, ratios, medians.ociferry));
  return { scenario, runs, medians, ratios, outcomes };
}
