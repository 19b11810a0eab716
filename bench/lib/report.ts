import type { ScenarioResult, TargetOutcome } from './run-scenario.ts';
import { type Target, TOOLS, type ToolRun } from './scenario.ts';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const times = (ratio: number) => `${ratio.toFixed(2)}x`;

/** `wall <= 0.8x skopeo`, `peak RSS <= 100 MiB`. */
export function describeTarget(target: Target): string {
  if ('maxMiB' in target) return `peak RSS <= ${target.maxMiB} MiB`;
  const name = { wall: 'wall', cpu: 'client CPU', rss: 'peak RSS' }[target.metric];
  return `${name} <= ${target.maxRatio}x skopeo`;
}

/** `PASS  wall <= 0.8x skopeo (0.62x)`. */
export function describeOutcome(outcome: TargetOutcome): string {
  const value =
    'maxMiB' in outcome.target ? `${outcome.value.toFixed(1)} MiB` : times(outcome.value);
  return `${outcome.pass ? 'PASS' : 'FAIL'}  ${describeTarget(outcome.target)} (${value})`;
}

/** `GET 6, HEAD 1` per distinct count across runs (they should not differ). */
function requestSummary(runs: readonly ToolRun[]): string {
  const distinct = new Set(
    runs.map((run) => {
      const entries = Object.entries(run.requests).sort(([a], [b]) => a.localeCompare(b));
      const total = entries.reduce((sum, [, n]) => sum + n, 0);
      return `${total} (${entries.map(([method, n]) => `${method} ${n}`).join(', ')})`;
    }),
  );
  return [...distinct].join(' | ');
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => row[col]?.length ?? 0)));
  return rows
    .map((row) =>
      row
        .map((cell, col) => cell.padEnd(widths?.[col] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The result table of one scenario, with every run's wall time and the target verdicts. */
export function formatResult(result: ScenarioResult): string {
  const { scenario, medians, ratios, runs } = result;
  const count = runs.ociferry.length;
  const rows = [
    ['tool', 'wall', 'cpu (u+s)', 'peak RSS', 'requests (registry log)', 'wall per run'],
    ...TOOLS.map((tool) => [
      tool,
      seconds(medians[tool].wallMs),
      seconds(medians[tool].cpuMs),
      mib(medians[tool].rssKiB),
      requestSummary(runs[tool]),
      runs[tool].map((r) => (r.measurement.wallMs / 1000).toFixed(2)).join(' '),
    ]),
    ['ociferry/skopeo', times(ratios.wall), times(ratios.cpu), times(ratios.rss), '', ''],
  ];
  return [
    `== ${scenario.name}: ${scenario.title} (median of ${count} runs each)`,
    table(rows),
    ...result.outcomes.map(describeOutcome),
  ].join('\n');
}

/** One line per scenario and target, for the end of a run of several scenarios. */
export function formatSummary(results: readonly ScenarioResult[]): string {
  const lines = results.flatMap((result) =>
    result.outcomes.map(
      (outcome) => `${result.scenario.name.padEnd(12)} ${describeOutcome(outcome)}`,
    ),
  );
  const failed = results.flatMap((r) => r.outcomes).filter((o) => !o.pass).length;
  return [
    '== summary',
    ...lines,
    failed === 0 ? 'all targets met' : `${failed} target(s) missed`,
  ].join('\n');
}
