/**
 * Run the benchmarks: skopeo and ociferry on the same workloads against real registries on
 * loopback, with wall time, CPU time, peak RSS, request counts and target verdicts.
 *
 *   node --import tsx bench/run.ts [NAME...] [--runs N] [--node-arg ARG]... [--cli FILE]
 *                                  [--keep-extra-ca-certs]
 *
 * NAME is a scenario (pull, copy-same, copy-cross, copy-large) or `copy` for the three copies;
 * none runs all. ociferry is measured as users run it: the built CLI (`npm run build`), started
 * through its shebang. `--node-arg` runs it with plain `node ARG... dist/cli/bin.js` instead (for
 * experiments with V8 flags); `--cli` measures another built bin.js (to compare a patched build).
 * `--keep-extra-ca-certs` leaves NODE_EXTRA_CA_CERTS in the tools' environment (removed by default:
 * see bench/README.md). Exits 1 when a target is missed, 2 on a usage error.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { copyCross, copyLarge, copySame } from './copy.ts';
import { buildCli } from './lib/build.ts';
import { measure, requireGnuTime } from './lib/measure.ts';
import { formatResult, formatSummary } from './lib/report.ts';
import { runScenario, type ScenarioResult } from './lib/run-scenario.ts';
import type { Scenario } from './lib/scenario.ts';
import { pull } from './pull.ts';

const SCENARIOS: readonly Scenario[] = [pull, copySame, copyCross, copyLarge];
const GROUPS: Readonly<Record<string, readonly Scenario[]>> = {
  copy: [copySame, copyCross, copyLarge],
};
const NAMES = [...SCENARIOS.map((s) => s.name), ...Object.keys(GROUPS)].join('|');
const USAGE = `usage: node --import tsx bench/run.ts [${NAMES}]... [--runs N] [--node-arg ARG]... [--cli FILE] [--keep-extra-ca-certs]`;

class UsageError extends Error {}

interface Options {
  scenarios: Scenario[];
  runs: number;
  nodeArgs: string[];
  cli: string | undefined;
  keepExtraCaCerts: boolean;
}

function parseOptions(args: string[]): Options {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(args);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const runs = Number(parsed.values.runs ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError('--runs needs a positive integer');
  const selected = new Set<Scenario>();
  for (const name of parsed.positionals) {
    const group = GROUPS[name] ?? SCENARIOS.filter((s) => s.name === name);
    if (group.length === 0) throw new UsageError(`unknown benchmark ${JSON.stringify(name)}`);
    for (const scenario of group) selected.add(scenario);
  }
  return {
    scenarios: selected.size === 0 ? [...SCENARIOS] : [...selected],
    runs,
    nodeArgs: parsed.values['node-arg'] ?? [],
    cli: parsed.values.cli,
    keepExtraCaCerts: parsed.values['keep-extra-ca-certs'] ?? false,
  };
}

function parseCommandLine(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      runs: { type: 'string' },
      'node-arg': { type: 'string', multiple: true },
      cli: { type: 'string' },
      'keep-extra-ca-certs': { type: 'boolean' },
    },
  });
}

/** First line of `command --version`, or `unknown`. */
function version(command: string): string {
  try {
    return (
      execFileSync(command, ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim() || 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

const load = () => (loadavg()[0] ?? 0).toFixed(2);

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n${USAGE}\n`);
    return 2;
  }
  await requireGnuTime();
  // Node builds its whole root certificate store at start-up when NODE_EXTRA_CA_CERTS is set
  // (50 ms of every node start here); the registries are plain HTTP, no certificate is involved.
  const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
  if (extraCaCerts !== undefined && !options.keepExtraCaCerts)
    delete process.env.NODE_EXTRA_CA_CERTS;
  const cli = options.cli ? resolve(options.cli) : await buildCli();
  const cpu = cpus();
  const flags = options.nodeArgs.length > 0 ? ` ${options.nodeArgs.join(' ')}` : '';
  console.log(
    [
      `date: ${new Date().toISOString()}`,
      `machine: ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
      `node ${process.version}; ${version('skopeo')}; registry ${version('docker-registry')}`,
      `ociferry: ${cli} ${flags ? `run by plain node${flags}` : 'run through its shebang'}`,
      `NODE_EXTRA_CA_CERTS: ${extraCaCerts === undefined ? 'not set' : process.env.NODE_EXTRA_CA_CERTS === undefined ? "removed from both tools' environment (--keep-extra-ca-certs keeps it)" : 'kept'}`,
    ].join('\n'),
  );
  const ociferry = (args: readonly string[]) =>
    options.nodeArgs.length > 0
      ? measure(process.execPath, [...options.nodeArgs, cli, ...args])
      : measure(cli, args);
  const results: ScenarioResult[] = [];
  for (const scenario of options.scenarios) {
    const before = load();
    const result = await runScenario(scenario, { ociferry, runs: options.runs });
    results.push(result);
    console.log(`\n${formatResult(result)}`);
    console.log(`load average (1 min): ${before} before, ${load()} after`);
  }
  console.log(`\n${formatSummary(results)}`);
  return results.every((r) => r.outcomes.every((o) => o.pass)) ? 0 : 1;
}

process.exitCode = await main();
