import { type Command, InvalidArgumentError } from 'commander';
import { parseDigest } from '../digest/index.ts';
import { type Platform, parsePlatform } from '../oci/index.ts';
import { normalizeRegistry, parseReference, type Reference } from '../reference/index.ts';

/*
 * Option parsers for commander: each turns a string into a value or throws
 * `InvalidArgumentError`, which commander reports as a usage error (exit status 2).
 * References are parsed by {@link referenceOperand} instead, because commander's message
 * would repeat the raw value, and a mistyped reference can hold a password (`user:pw@host/x`).
 */

/**
 * Parse a reference operand, or end with a usage error (exit status 2) whose message is
 * `InvalidReferenceError`'s, which masks user info.
 */
export function referenceOperand(command: Command, value: string): Reference {
  try {
    return parseReference(value);
  } catch (error) {
    return usageError(command, error instanceof Error ? error.message : String(error));
  }
}

/** End the run with a usage error: `error: message` and exit status 2. */
export function usageError(command: Command, message: string): never {
  return command.error(`error: ${message}`, { exitCode: 2, code: 'ociferry.usage' });
}

/** `os/arch[/variant]`. */
export function platformArg(value: string): Platform {
  return usage(() => parsePlatform(value));
}

/** A cache key: a digest (`sha256:…`), hex digits in either case as the cache functions take it. */
export function cacheKeyArg(value: string): string {
  usage(() => parseDigest(value.toLowerCase()));
  return value;
}

/** A whole number of at least 1. */
export function positiveIntegerArg(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError('expected a whole number of at least 1');
  }
  return number;
}

/** A registry host for login/logout: `host[:port]`, or a URL such as `https://index.docker.io/v1/`. */
export function registryArg(value: string): string {
  const host = URL.canParse(value) && value.includes('://') ? new URL(value).host : value;
  const slash = host.indexOf('/');
  if (slash > 0) {
    // Credentials belong to a registry, not to one of its repositories.
    const registry = host.slice(0, slash);
    throw new InvalidArgumentError(
      `expected a registry host[:port], not a repository: use ${JSON.stringify(registry)}`,
    );
  }
  return usage(() => normalizeRegistry(host));
}

/** Collects repeated `k=v` options into a record. */
export function annotationArg(
  value: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq < 1) throw new InvalidArgumentError('expected KEY=VALUE');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** Collects a repeated option into a list. */
export function repeatedArg(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Run a library parser for an option, turning its error into a usage error. */
export function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** A size in bytes: `1048576`, `500MB` (powers of 1000), `1MiB` (powers of 1024), `1.5GiB`. */
export function sizeArg(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const factor = match ? SIZE_UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new InvalidArgumentError('expected a size such as 1048576, 500MB or 1MiB');
  }
  const bytes = Math.floor(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError('size out of range');
  return bytes;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** A duration in milliseconds: `72h`, `7d`, `1h30m`, `90s`, `2w` (every number needs a unit). */
export function durationArg(value: string): number {
  const parts = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/.test(value)
    ? [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)]
    : [];
  if (parts.length === 0) {
    throw new InvalidArgumentError('expected a duration such as 72h, 7d or 1h30m');
  }
  const ms = parts.reduce(
    (sum, [, number, unit]) => sum + Number(number) * (DURATION_UNITS[unit as string] as number),
    0,
  );
  if (!Number.isSafeInteger(Math.round(ms)))
    throw new InvalidArgumentError('duration out of range');
  return Math.round(ms);
}
