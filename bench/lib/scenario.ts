import type { TestRegistry } from '../../test/helpers/registry.ts';
import type { Measurement } from './measure.ts';
import { SEED_USER_AGENT } from './seed-image.ts';

/** The two tools every scenario compares. */
export const TOOLS = ['skopeo', 'ociferry'] as const;
export type Tool = (typeof TOOLS)[number];

/** One run of one tool: its resources and the requests the registries logged for it. */
export interface ToolRun {
  readonly measurement: Measurement;
  /** Requests by method, counted from the registries' access logs (seeding excluded). */
  readonly requests: Readonly<Record<string, number>>;
}

/** The figures a target can bound. */
export type Metric = 'wall' | 'cpu' | 'rss';

/** A goal for ociferry: a ratio to skopeo's median, or a peak RSS ceiling. */
export type Target =
  | { readonly metric: Metric; readonly maxRatio: number }
  | { readonly metric: 'rss'; readonly maxMiB: number };

/** What a scenario's `setup` hands to the run loop. */
export interface Prepared {
  /** One measured run of `tool` into a fresh destination, verified afterwards. */
  run(tool: Tool, index: number): Promise<ToolRun>;
  teardown(): Promise<void>;
}

/** What every scenario's setup gets. */
export interface SetupContext {
  /** Run the built ociferry CLI with `args` (e.g. `copy SRC DST -q`), measured. */
  ociferry(args: readonly string[]): Promise<Measurement>;
}

/** One benchmark: a workload both tools run, and the targets ociferry must meet. */
export interface Scenario {
  /** Selects the scenario on the command line. */
  readonly name: string;
  /** One line: the workload and where it comes from (issue number). */
  readonly title: string;
  readonly targets: readonly Target[];
  setup(context: SetupContext): Promise<Prepared>;
}

/** A registry and the access-log position a run started at. */
export interface LogWindow {
  readonly registry: TestRegistry;
  readonly since: number;
}

/** Mark where a run starts in each registry's access log. */
export async function openWindows(registries: readonly TestRegistry[]): Promise<LogWindow[]> {
  return Promise.all(
    registries.map(async (registry) => ({ registry, since: await registry.mark() })),
  );
}

/** Requests by method that the registries logged since their marks, seeding requests left out. */
export async function countRequests(
  windows: readonly LogWindow[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { registry, since } of windows) {
    for (const entry of await registry.requests({ since })) {
      if (entry.userAgent === SEED_USER_AGENT) continue;
      counts[entry.method] = (counts[entry.method] ?? 0) + 1;
    }
  }
  return counts;
}
