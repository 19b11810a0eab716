import type { Readable } from 'node:stream';

/** One request as the registry's access log (Apache combined format, gorilla handlers) records it. */
export interface AccessLogEntry {
  method: string;
  /** Request path as sent, still percent-encoded, without the query. */
  path: string;
  /** Query string without the leading `?`; `''` when there is none. */
  query: string;
  status: number;
  /** Body bytes the registry wrote: 0 for a successful HEAD, the error body's size for a failed one. */
  bytes: number;
  userAgent: string;
  /** When the request arrived, to the second (the log's resolution). */
  time: Date;
}

/** Selects access-log entries; every given field must match. */
export interface RequestFilter {
  method?: string;
  path?: RegExp;
  status?: number;
  /** A `mark()` value: only entries logged after that mark. */
  since?: number;
}

const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
const LINE = new RegExp(
  String.raw`^\S+ \S+ \S+ \[([^\]]+)\] ${QUOTED} (\d{3}) (\d+|-)(?: ${QUOTED} ${QUOTED})?$`,
);
const TIME = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ESCAPE = /\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))/g;
const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t' };

/** Undo gorilla's quoting (`\"`, `\\`, `\n`, `\xNN`, `\uNNNN`). */
function unquote(text: string): string {
  return text.replace(ESCAPE, (_, x?: string, u?: string, bigU?: string, char?: string) => {
    const hex = x ?? u ?? bigU;
    if (hex !== undefined) return String.fromCodePoint(Number.parseInt(hex, 16));
    return SIMPLE_ESCAPES[char ?? ''] ?? char ?? '';
  });
}

/** `23/Nov/2026:19:12:58 +0000` -> Date, or undefined when malformed. */
function parseLogTime(text: string): Date | undefined {
  const m = TIME.exec(text);
  if (!m) return undefined;
  const [, day, mon, year, hh, mm, ss, sign, zh, zm] = m;
  const month = MONTHS.indexOf(mon ?? '');
  if (month < 0) return undefined;
  const offsetMinutes = (sign === '-' ? -1 : 1) * (Number(zh) * 60 + Number(zm));
  const utc = Date.UTC(Number(year), month, Number(day), Number(hh), Number(mm), Number(ss));
  return new Date(utc - offsetMinutes * 60_000);
}

/** Parse one access-log line; `undefined` for anything that is not one (other log output). */
export function parseAccessLogLine(line: string): AccessLogEntry | undefined {
  const m = LINE.exec(line.trimEnd());
  if (!m) return undefined;
  const [, rawTime = '', rawRequest = '', status, bytes, , rawAgent = ''] = m;
  const time = parseLogTime(rawTime);
  const request = unquote(rawRequest).split(' ');
  if (!time || request.length < 3) return undefined;
  const method = request[0] ?? '';
  const uri = request.slice(1, -1).join(' ');
  const q = uri.indexOf('?');
  return {
    method,
    path: q < 0 ? uri : uri.slice(0, q),
    query: q < 0 ? '' : uri.slice(q + 1),
    status: Number(status),
    bytes: bytes === '-' ? 0 : Number(bytes),
    userAgent: unquote(rawAgent),
    time,
  };
}

/** Whether `entry` passes `filter`'s method, path and status tests (`since` is positional). */
export function matchesFilter(entry: AccessLogEntry, filter: RequestFilter): boolean {
  return (
    (filter.method === undefined || entry.method === filter.method.toUpperCase()) &&
    (filter.path === undefined || filter.path.test(entry.path)) &&
    (filter.status === undefined || entry.status === filter.status)
  );
}

/**
 * Collects access-log entries from a stream (the registry's stdout) as they arrive, in order,
 * and lets callers wait for a particular line.
 */
export class AccessLogReader {
  /** Every entry read so far, in log order. */
  readonly entries: AccessLogEntry[] = [];
  #partial = '';
  readonly #waiters = new Set<() => void>();

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => this.#feed(chunk));
  }

  #feed(chunk: string): void {
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    let added = false;
    for (const line of lines) {
      const entry = parseAccessLogLine(line);
      if (entry) {
        this.entries.push(entry);
        added = true;
      }
    }
    if (added) for (const wake of this.#waiters) wake();
  }

  /** Resolve once an entry satisfying `predicate` has been read; rejects when `signal` aborts. */
  waitFor(predicate: (entry: AccessLogEntry) => boolean, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.entries.some(predicate)) done(resolve);
      };
      const onAbort = (): void => done(() => reject(signal.reason));
      const done = (settle: () => void): void => {
        this.#waiters.delete(check);
        signal.removeEventListener('abort', onAbort);
        settle();
      };
      if (signal.aborted) return onAbort();
      this.#waiters.add(check);
      signal.addEventListener('abort', onAbort);
      check();
    });
  }
}
