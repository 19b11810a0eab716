import { compareGoTimes } from '../cache/go-time.ts';
import type { ExportRecord, RecordUpdate } from './api.ts';

/** Options of {@link wantedExports}. */
export interface WantedOptions {
  /** RFC 3339: results created before it are not wanted (the retention would drop them). */
  readonly notBefore?: string;
}

/**
 * Which of an engine's results the service asks for (UpdateCacheRecords' answer), one per record:
 * the engine's newest result (by `createdAt`, the first one when none says) when the namespace
 * holds no result of that record, or when it is newer than every result the namespace holds.
 * BuildKit loads the newest result of a key, so a newer result an engine made (a step run again,
 * its output different) is the one its next import should find. `held` maps a record to the
 * `createdAt` of each result the namespace holds.
 */
export function wantedExports(
  records: readonly RecordUpdate[],
  held: ReadonlyMap<string, readonly string[]>,
  options: WantedOptions = {},
): ExportRecord[] {
  const wanted: ExportRecord[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    if (seen.has(record.digest)) continue;
    const newest = newestResult(record);
    if (!newest) continue;
    const at = newest.createdAt;
    if (at !== undefined && options.notBefore && compareGoTimes(at, options.notBefore) < 0) {
      continue;
    }
    const times = held.get(record.digest) ?? [];
    if (times.length > 0 && (at === undefined || times.some((t) => compareGoTimes(at, t) <= 0))) {
      continue;
    }
    seen.add(record.digest);
    wanted.push({ digest: record.digest, cacheRefID: newest.id });
  }
  return wanted;
}

function newestResult(record: RecordUpdate): { id: string; createdAt?: string } | undefined {
  let newest = record.results?.[0];
  for (const result of record.results ?? []) {
    if (
      result.createdAt !== undefined &&
      (newest?.createdAt === undefined || compareGoTimes(result.createdAt, newest.createdAt) > 0)
    ) {
      newest = result;
    }
  }
  return newest;
}
