import { addAbortSignal, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import Parser from 'stream-json/Parser.js';
import { createHasher, DigestMismatchError, parseDigest } from '../digest/index.ts';
import { SizeExceededError } from '../errors.ts';
import {
  type CacheConfig,
  DEFAULT_CACHE_CONFIG_LIMIT,
  describeRecord,
  validateCacheConfig,
} from './config.ts';
import { CacheConfigError } from './errors.ts';
import { foldGoJsonKey } from './go-json.ts';
import { normalizeGoTime, ZERO_TIME } from './go-time.ts';

/** Options of {@link parseCacheConfig}. */
export interface ParseCacheConfigOptions {
  /** Size cap in bytes, enforced while streaming (`SIZE_EXCEEDED`). Default 16 MiB. */
  limit?: number;
  /** Digest the bytes must hash to (`DIGEST_MISMATCH`); hashed in the same pass as the parse. */
  expectedDigest?: string;
  /** Where the bytes come from, for error messages; never include credentials. */
  origin?: string;
  signal?: AbortSignal;
}

/** A parsed cache config with the digest and size of the bytes it was read from. */
export interface ParsedCacheConfig {
  readonly config: CacheConfig;
  /** Digest of the bytes, in the algorithm of `expectedDigest` (sha256 without one). */
  readonly digest: string;
  readonly size: number;
}

/**
 * Stream-parse a BuildKit cache config while hashing the same bytes, with the decoding rules of
 * Go's `encoding/json` that BuildKit relies on (keys matched case-insensitively, unknown keys
 * ignored, `null` as absent, an absent `parent` as 0), then validate it like BuildKit's `Parse`.
 * When the bytes do not match `expectedDigest`, that is reported ({@link DigestMismatchError})
 * even if they are also malformed; otherwise {@link CacheConfigError}, or
 * {@link SizeExceededError} as soon as more than `limit` bytes arrive.
 */
export async function parseCacheConfig(
  source: Readable | Uint8Array,
  options: ParseCacheConfigOptions = {},
): Promise<ParsedCacheConfig> {
  const { limit = DEFAULT_CACHE_CONFIG_LIMIT, expectedDigest, origin, signal } = options;
  signal?.throwIfAborted();
  const expected = expectedDigest === undefined ? undefined : parseDigest(expectedDigest);
  const hasher = createHasher(expected?.algorithm);
  const decoder = new ConfigDecoder();
  const parser = new Parser({ packValues: true, streamValues: false });
  let failure: unknown;
  parser.on('data', (token: Token) => {
    if (failure !== undefined) return;
    try {
      decoder.token(token);
    } catch (error) {
      failure = error;
    }
  });
  let ending = false;
  parser.on('error', (error: Error) => {
    const reason = error.message.replace(/^Parser (has |cannot parse input: )?/, '');
    const problem = ending ? `ends early (${reason}; truncated?)` : `is not valid JSON (${reason})`;
    failure ??= new CacheConfigError(`input ${problem}`, { cause: error });
  });

  let size = 0;
  try {
    for await (const chunk of chunksOf(source, signal)) {
      size += chunk.byteLength;
      if (size > limit) throw new SizeExceededError({ what: 'cache config', limit });
      hasher.update(chunk);
      if (failure === undefined) await write(parser, chunk);
      // Malformed: keep hashing only if a digest can tell corrupted bytes from a bad config.
      else if (expected === undefined) break;
    }
    if (failure === undefined) {
      ending = true;
      parser.end();
      await finished(parser).catch(() => undefined); // the 'error' listener keeps the reason
    }
  } finally {
    parser.destroy();
  }

  const digest = hasher.digest();
  if (expected !== undefined && digest !== expected.digest) {
    throw new DigestMismatchError({ expected: expected.digest, actual: digest, source: origin });
  }
  if (failure !== undefined) throw failure;
  const config = decoder.result();
  validateCacheConfig(config);
  return { config, digest, size };
}

async function* chunksOf(
  source: Readable | Uint8Array,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  if (signal) addAbortSignal(signal, source);
  for await (const chunk of source) {
    yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
  }
}

/** Write with backpressure; resolves early if the parser fails (its error is kept elsewhere). */
async function write(parser: Parser, chunk: Uint8Array): Promise<void> {
  if (parser.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      parser.off('drain', done);
      parser.off('close', done);
      resolve();
    };
    parser.on('drain', done);
    parser.on('close', done);
  });
}

// ---- Decoding stream-json tokens into typed objects, the way Go's encoding/json would ----

/** A packed token from stream-json's Parser (`packValues: true, streamValues: false`). */
interface Token {
  readonly name: string;
  readonly value?: string | boolean | null;
}

type Obj = Record<string, unknown>;
type GoType = ScalarType | SliceType | StructType;
interface ScalarType {
  readonly kind: 'int' | 'string' | 'time';
}
interface SliceType {
  readonly kind: 'slice';
  readonly elem: GoType;
}
interface StructType {
  readonly kind: 'struct';
  readonly create: () => Obj;
  /** By folded JSON key. */
  readonly fields: ReadonlyMap<string, Field>;
}
interface Field {
  /** Property of the decoded object (the JSON key may differ: a record's `layers` are `results`). */
  readonly prop: string;
  readonly type: GoType;
  /** `omitempty` field whose zero value is kept as an absent property. */
  readonly omitZero?: boolean;
}

const INT: ScalarType = { kind: 'int' };
const STRING: ScalarType = { kind: 'string' };
const TIME: ScalarType = { kind: 'time' };
const slice = (elem: GoType): SliceType => ({ kind: 'slice', elem });
const struct = (
  create: () => Obj,
  fields: ReadonlyArray<readonly [json: string, field: Field]>,
): StructType => ({
  kind: 'struct',
  create,
  fields: new Map(fields.map(([json, field]) => [foldGoJsonKey(json), field])),
});

// The JSON names and shapes of cache/remotecache/v1/types/spec.go.
const ANNOTATIONS = struct(
  () => ({ createdAt: ZERO_TIME }),
  [
    ['mediaType', { prop: 'mediaType', type: STRING, omitZero: true }],
    ['diffID', { prop: 'diffID', type: STRING, omitZero: true }],
    ['size', { prop: 'size', type: INT, omitZero: true }],
    ['createdAt', { prop: 'createdAt', type: TIME }],
  ],
);
const LAYER = struct(
  () => ({ blob: '', parent: 0 }),
  [
    ['blob', { prop: 'blob', type: STRING }],
    ['parent', { prop: 'parent', type: INT }],
    // The one struct-valued field; a Go pointer, so `null` clears it.
    ['annotations', { prop: 'annotations', type: ANNOTATIONS }],
  ],
);
const RESULT = struct(
  () => ({ layer: 0, createdAt: ZERO_TIME }),
  [
    ['layer', { prop: 'layer', type: INT }],
    ['createdAt', { prop: 'createdAt', type: TIME }],
  ],
);
const CHAIN = struct(
  () => ({ layers: [], createdAt: ZERO_TIME }),
  [
    ['layers', { prop: 'layers', type: slice(INT) }],
    ['createdAt', { prop: 'createdAt', type: TIME }],
  ],
);
const INPUT = struct(
  () => ({ link: 0 }),
  [
    ['selector', { prop: 'selector', type: STRING, omitZero: true }],
    ['link', { prop: 'link', type: INT }],
  ],
);
const RECORD = struct(
  () => ({ digest: '', results: [], chains: [], inputs: [] }),
  [
    ['layers', { prop: 'results', type: slice(RESULT) }],
    ['chains', { prop: 'chains', type: slice(CHAIN) }],
    ['digest', { prop: 'digest', type: STRING }],
    ['inputs', { prop: 'inputs', type: slice(slice(INPUT)) }],
  ],
);
const CONFIG = struct(
  () => ({ layers: [], records: [] }),
  [
    ['layers', { prop: 'layers', type: slice(LAYER) }],
    ['records', { prop: 'records', type: slice(RECORD) }],
  ],
);
const RECORDS_KEY = foldGoJsonKey('records');

type Frame =
  | {
      readonly kind: 'struct';
      readonly type: StructType;
      readonly target: Obj;
      key?: string;
      field?: Field;
    }
  | {
      readonly kind: 'slice';
      readonly type: SliceType;
      readonly target: unknown[];
      /** The list a repeated key decoded before: Go decodes new elements into its elements. */
      readonly previous: readonly unknown[] | undefined;
    }
  | { readonly kind: 'skip'; depth: number };

/** Builds a {@link CacheConfig} token by token; memory is the result, not a JSON tree. */
class ConfigDecoder {
  readonly #stack: Frame[] = [];
  #root: Obj | undefined;

  token(token: Token): void {
    const top = this.#stack.at(-1);
    if (top?.kind === 'skip') {
      if (token.name === 'startObject' || token.name === 'startArray') top.depth++;
      else if ((token.name === 'endObject' || token.name === 'endArray') && --top.depth === 0) {
        this.#stack.pop();
      }
      return;
    }
    switch (token.name) {
      case 'keyValue': {
        const frame = top as Extract<Frame, { kind: 'struct' }>;
        frame.key = token.value as string;
        frame.field = frame.type.fields.get(foldGoJsonKey(frame.key));
        return;
      }
      case 'endObject':
        this.#stack.pop();
        this.#deliver((top as Exclude<Frame, { kind: 'skip' }>).target);
        return;
      case 'endArray': {
        this.#stack.pop();
        // A list grown by push keeps room for 17 entries: a copy of a short one is exact-sized
        // (a config's many one- and two-entry lists are then a third of the memory).
        const list = (top as Extract<Frame, { kind: 'slice' }>).target;
        this.#deliver(list.length < 16 ? list.slice() : list);
        return;
      }
      default:
        this.#value(token, top);
    }
  }

  result(): CacheConfig {
    if (this.#root === undefined) throw new CacheConfigError('input ends early');
    return this.#root as unknown as CacheConfig;
  }

  #value(token: Token, top: Exclude<Frame, { kind: 'skip' }> | undefined): void {
    const type =
      top === undefined ? CONFIG : top.kind === 'slice' ? top.type.elem : top.field?.type;
    if (type === undefined) {
      // Unknown key: ignored like Go does, nested values included.
      if (token.name === 'startObject' || token.name === 'startArray') {
        this.#stack.push({ kind: 'skip', depth: 1 });
      }
      return;
    }
    // What Go decodes into: the value a repeated key left there, or nothing yet.
    const base =
      top === undefined
        ? undefined
        : top.kind === 'slice'
          ? top.previous?.[top.target.length]
          : top.target[(top.field as Field).prop];
    switch (token.name) {
      case 'startObject':
        if (type.kind !== 'struct') throw this.#typeError(type, 'an object');
        this.#stack.push({
          kind: 'struct',
          type,
          target: (base as Obj | undefined) ?? type.create(),
        });
        return;
      case 'startArray':
        if (type.kind !== 'slice') throw this.#typeError(type, 'an array');
        this.#stack.push({
          kind: 'slice',
          type,
          target: [],
          previous: Array.isArray(base) ? base : undefined,
        });
        return;
      case 'nullValue':
        // Go: null clears a slice or pointer and leaves anything else as it was.
        if (type.kind === 'slice') this.#deliver([]);
        else if (top?.kind !== 'struct') this.#deliver(base ?? zero(type));
        else if (type.kind === 'struct') this.#deliver(undefined);
        return;
      case 'stringValue':
        this.#deliver(this.#string(type, token.value as string));
        return;
      case 'numberValue':
        this.#deliver(this.#integer(type, token.value as string));
        return;
      default:
        throw this.#typeError(type, 'a boolean');
    }
  }

  #string(type: GoType, value: string): string {
    if (type.kind === 'string') return own(value);
    if (type.kind !== 'time') throw this.#typeError(type, 'a string');
    const time = normalizeGoTime(value);
    if (time === undefined) {
      throw this.#error(`${JSON.stringify(value)} is not an RFC 3339 time`);
    }
    return own(time);
  }

  #integer(type: GoType, raw: string): number {
    if (type.kind !== 'int') throw this.#typeError(type, `the number ${raw}`);
    if (!/^-?\d+$/.test(raw)) throw this.#error(`expected an integer, got ${raw}`);
    const value = Number(raw);
    if (!Number.isSafeInteger(value)) throw this.#error(`integer ${raw} is out of range`);
    return value;
  }

  #deliver(value: unknown): void {
    const top = this.#stack.at(-1);
    if (top === undefined) {
      this.#root = value as Obj;
    } else if (top.kind === 'slice') {
      top.target.push(value);
    } else if (top.kind === 'struct' && top.field !== undefined) {
      const { prop, omitZero } = top.field;
      if (value === undefined || (omitZero && (value === '' || value === 0)))
        delete top.target[prop];
      else top.target[prop] = value;
    }
  }

  #typeError(type: GoType, got: string): CacheConfigError {
    return this.#error(`expected ${describeType(type)}, got ${got}`);
  }

  /** An error naming the JSON path being decoded and, inside a record, the record. */
  #error(problem: string): CacheConfigError {
    let path = '';
    for (const frame of this.#stack) {
      if (frame.kind === 'struct' && frame.key !== undefined)
        path += path ? `.${frame.key}` : frame.key;
      else if (frame.kind === 'slice') path += `[${frame.target.length}]`;
    }
    const [root, records, record] = this.#stack;
    if (
      root?.kind === 'struct' &&
      root.key !== undefined &&
      foldGoJsonKey(root.key) === RECORDS_KEY &&
      records?.kind === 'slice'
    ) {
      const index = records.target.length;
      const digest = record?.kind === 'struct' ? (record.target.digest as string) : undefined;
      return new CacheConfigError(`${describeRecord(index, digest)}: ${path}: ${problem}`, {
        record: index,
      });
    }
    return new CacheConfigError(`${path || 'top level'}: ${problem}`);
  }
}

/**
 * `value` as a string of its own. The parser's strings are slices of the text it was given, and
 * a slice keeps that whole text alive: for a 100k-record config, 27 MB held by the digests.
 * Short strings are copies already; a join of two slices makes a flat copy of a long one.
 */
function own(value: string): string {
  return value.length < 13 ? value : [value.slice(0, 1), value.slice(1)].join('');
}

function zero(type: GoType): unknown {
  switch (type.kind) {
    case 'int':
      return 0;
    case 'string':
      return '';
    case 'time':
      return ZERO_TIME;
    case 'slice':
      return [];
    case 'struct':
      return type.create();
  }
}

function describeType(type: GoType): string {
  switch (type.kind) {
    case 'int':
      return 'an integer';
    case 'string':
      return 'a string';
    case 'time':
      return 'an RFC 3339 time string';
    case 'slice':
      return 'an array';
    case 'struct':
      return 'an object';
  }
}
