import { createHash } from 'node:crypto';
import type { CacheRecord } from './config.ts';
import type { CacheGraph } from './graph.ts';

/**
 * A cache key as BuildKit's solver has it: the step's digest and, per input of the step, the
 * keys that input may come from, each with the selector of its link. Two steps with the same
 * operation share `digest`; what tells them apart is where their inputs come from. The content
 * of files enters through the inputs too: a `COPY` whose files changed keeps its digest, and
 * its input links from another content key (see {@link contentKey}).
 */
export interface CacheKey {
  /**
   * The digest a cache config record carries: BuildKit's `rootKey(operation, output)`, the
   * sha256 of `"<operation digest>@<output index>"` (see {@link recordDigest}).
   */
  readonly digest: string;
  /**
   * One group per input of the step, in input order; a group lists the keys that input may
   * come from (any of them may match). Empty for a source (image, local files, content key).
   */
  readonly inputs: readonly (readonly CacheKeyInput[])[];
}

/** One key an input may come from, and the selector of the link (a path digest, or none). */
export interface CacheKeyInput {
  readonly key: CacheKey;
  /** Digest selecting part of the input (`COPY` paths); absent or empty for none. */
  readonly selector?: string;
}

/** What {@link operationKey} takes: an operation as BuildKit's solver computes its cache map. */
export interface OperationKeyInit {
  /** The operation's cache map digest (`CacheMap.Digest`), or a `random:` digest (never cached). */
  readonly digest: string;
  /** Output index of the operation, default 0. */
  readonly output?: number;
  /** Per input, the keys it may come from with the link's selector. */
  readonly inputs?: readonly (readonly CacheKeyInput[])[];
}

const RANDOM_PREFIX = 'random:';

/**
 * The digest BuildKit writes into a cache config for output `output` of the operation with
 * cache map digest `operation` (solver `rootKey`, remote cache `outputKey`): the sha256 of
 * `"<operation>@<output>"`. A `random:` operation gives a `random:` key, which no cache holds.
 */
export function recordDigest(operation: string, output = 0): string {
  const hex = createHash('sha256').update(`${operation}@${output}`).digest('hex');
  return operation.startsWith(RANDOM_PREFIX) ? `${RANDOM_PREFIX}${hex}` : `sha256:${hex}`;
}

/** The key of an operation's output, its record digest computed as BuildKit does. */
export function operationKey(init: OperationKeyInit): CacheKey {
  return { digest: recordDigest(init.digest, init.output ?? 0), inputs: init.inputs ?? [] };
}

/**
 * The content-based key of an input (BuildKit's "slow cache" key): the checksum of the files an
 * input's selector picks, output -1, no inputs. BuildKit adds it, with no selector, beside the
 * input's definition key, so a step whose parent changed still matches when the files it reads
 * did not.
 */
export function contentKey(checksum: string): CacheKey {
  return { digest: recordDigest(checksum, -1), inputs: [] };
}

/** True when `digest` is a `random:` key: BuildKit never exports nor matches those. */
export function isRandomKey(digest: string): boolean {
  return digest.startsWith(RANDOM_PREFIX);
}

/**
 * The key of every record of a cache config, by record index: its digest and the keys of the
 * records its input links come from, with their selectors. These are the keys the build that
 * wrote the cache computed for its steps. Cost O(records + links).
 */
export function recordKeys(graph: CacheGraph): readonly CacheKey[] {
  const records = graph.config.records;
  const keys = new Array<CacheKey | undefined>(records.length);
  // Iterative post-order (validated configs have no loops; chains may be deep).
  for (let root = 0; root < records.length; root++) {
    if (keys[root]) continue;
    const stack = [root];
    while (stack.length > 0) {
      const index = stack[stack.length - 1] as number;
      const record = records[index] as CacheRecord;
      const pending = record.inputs.flatMap((group) =>
        group.filter((input) => keys[input.link] === undefined).map((input) => input.link),
      );
      if (pending.length > 0) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      keys[index] ??= {
        digest: record.digest.toLowerCase(),
        inputs: record.inputs.map((group) =>
          group.map((input) => {
            const key = keys[input.link] as CacheKey;
            return input.selector ? { key, selector: input.selector } : { key };
          }),
        ),
      };
    }
  }
  return keys as CacheKey[];
}
