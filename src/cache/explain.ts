import { contextOf } from '../remote/ociferry-context.ts';
import type { CacheRecord } from './config.ts';
import type { CacheGraph } from './graph.ts';
import { type OpenCacheSourceOptions, openCacheSource } from './import.ts';
import { type CacheKey, type CacheKeyInput, recordKeys } from './key.ts';
import { layerHistory } from './layer-history.ts';
import { type CacheItem, CacheKeyStore } from './match.ts';
import { openCacheSources } from './open-sources.ts';
import { buildOrder, finalRecords } from './order.ts';
import { BlobPresence } from './presence.ts';
import { type CacheSource, type CacheSourceInput, isCacheSource } from './source.ts';
import { stepLayers } from './step-layers.ts';

/** Options of {@link explainCache}. */
export interface ExplainCacheOptions extends OpenCacheSourceOptions {
  /** Blob existence checks in flight at once, default 8. */
  concurrency?: number;
  /**
   * Whether the rebuilding BuildKit reads caches in image-manifest form (v0.12 and later).
   * Default false, as Docker Engine 20.10's BuildKit, which reads such a cache as an image without
   * inline cache and finds nothing in it: those `from` caches are then left out, with a warning.
   */
  readsImageManifest?: boolean;
  /**
   * Whether the rebuilding BuildKit imports cache configs over 1 MiB. Default false, as every
   * BuildKit release (its importer's cap is hard-coded): such `from` caches are left out, with a
   * warning.
   */
  readsOversizedConfigs?: boolean;
}

/**
 * Why a step is or is not served from the caches:
 * - `loaded`: its key matches a record of the caches whose result BuildKit loads;
 * - `skipped`: a later step is loaded, so BuildKit never needs this one (it prints it CACHED);
 * - `no-record`: no cache has a record with the step's digest (the step itself changed);
 * - `content-changed`: an input comes from a content checksum or source the caches lack, or
 *   links from its parent with another selector (the files the step reads changed);
 * - `parent-runs`: an input comes from a step that is not in the caches, which runs;
 * - `not-linked`: the caches have the step and its parents, but not one after the other
 *   (steps moved, inserted, or inputs that never met);
 * - `no-result`: the caches know the key but keep no result for it (a `mode=min` cache keeps
 *   only the final step's, and a build served from a cache exports only what it loaded);
 * - `blobs-missing`: the results the key reaches load blobs the cache lacks.
 */
export type StepCode =
  | 'loaded'
  | 'skipped'
  | 'no-record'
  | 'content-changed'
  | 'parent-runs'
  | 'not-linked'
  | 'no-result'
  | 'blobs-missing';

/** One input link of a step. */
export interface StepInput {
  readonly input: number;
  /** Digest of the record the input comes from. */
  readonly from: string;
  readonly selector?: string;
}

/** One step of the build, as {@link explainCache} sees it. */
export interface ExplainedStep {
  /** The step's record digest (its cache key digest). */
  readonly digest: string;
  /** True when BuildKit would print it CACHED: loaded from a cache or never needed. */
  readonly cached: boolean;
  /** Why, in a sentence. */
  readonly reason: string;
  readonly code: StepCode;
  /** Index of the record in the `--build` cache's config. */
  readonly record: number;
  readonly inputs: readonly StepInput[];
  /** Top layer of the step's result in the build cache, when it has one. */
  readonly layer?: string;
  /** The image history's `created_by` of that layer (inline caches). */
  readonly createdBy?: string;
  /** For a loaded step: the cache whose result BuildKit loads, and that result's time. */
  readonly source?: string;
  readonly createdAt?: string;
  /** For `blobs-missing`: the blobs the cache lacks. */
  readonly missingBlobs?: readonly string[];
}

/** A record without inputs of the build: a source (image, local files) or a content checksum. */
export interface ExplainedSource {
  readonly digest: string;
  readonly record: number;
  /** Whether a cache has a record without inputs with this digest. */
  readonly found: boolean;
}

/** Result of {@link explainCache}; the `cache explain --json` object. */
export interface CacheExplanation {
  /** Steps (records with inputs) in build order: every input before the steps that use it. */
  readonly steps: readonly ExplainedStep[];
  readonly cached: number;
  readonly total: number;
  /** Whether every final step (one no other step uses) is cached. */
  readonly finalCached: boolean;
  /** HTTP exchanges made (token requests included). */
  readonly requests: number;
  /** Always 0: manifests and configs are read, blobs only HEADed. */
  readonly layerBytesDownloaded: 0;
  /** The build cache, as a `--build` value. */
  readonly build: string;
  /** The caches searched, as `--from` values (those that do not exist are left out). */
  readonly from: readonly string[];
  readonly sources: readonly ExplainedSource[];
  readonly warnings: readonly string[];
}

/**
 * Predict which steps of a build BuildKit (v0.8, as in Docker Engine 20.10) serves from the
 * caches `from` when it rebuilds, and why the others run. `build` holds the build's own records:
 * the inline cache of the image it produced, or a cache it exported; each record's key (digest
 * and input links) is what the rebuild computes for that step.
 *
 * The decision follows BuildKit's solver from the final steps down: a step whose key reaches a
 * record of the caches with a result whose blobs all exist is loaded, and nothing below it runs
 * (BuildKit prints those CACHED too); otherwise the steps its content-based keys need are
 * completed first (a `COPY --from` stage), and if that does not give a result either, all its
 * inputs complete and the step runs. Keys match as BuildKit's importer walks them (see
 * {@link CacheKeyStore}). Reads manifests and configs only; result blobs are HEADed.
 */
export async function explainCache(
  build: CacheSourceInput,
  from: CacheSourceInput | readonly CacheSourceInput[],
  options: ExplainCacheOptions = {},
): Promise<CacheExplanation> {
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const opened = { ...options, client };
  const [buildSource, { sources: openedCaches, warnings: openWarnings }] = await Promise.all([
    isCacheSource(build) ? build : openCacheSource(build, opened),
    openCacheSources(from, { ...opened, skipOversized: !options.readsOversizedConfigs }),
  ]);
  const warnings = [...openWarnings];
  const caches = openedCaches.filter((source) => {
    // A service's cache reaches an engine through ImportCache, not through a manifest.
    if (options.readsImageManifest || source.format !== 'image-manifest') return true;
    if (source.spec.type === 'service') return true;
    warnings.push(
      `${source.name} is a cache in image-manifest form, which BuildKit before v0.12 (Docker Engine 20.10) reads as an image without inline cache and finds nothing in; left out (readsImageManifest counts it)`,
    );
    return false;
  });
  const history = await layerHistory(buildSource as CacheSource, { signal: options.signal });
  const solver = new SolverModel(
    buildSource.graph,
    new CacheKeyStore(caches),
    new BlobPresence(options),
  );
  await solver.run();
  const explanation = await solver.explain(history);
  return {
    ...explanation,
    requests: client.requestCount - before,
    layerBytesDownloaded: 0,
    build: buildSource.name,
    from: caches.map((source) => source.name),
    warnings,
  };
}

type State = 'loaded' | 'skipped' | 'run';

/** The chosen result of a loaded step. */
interface Loaded {
  readonly item: CacheItem<CacheSource>;
}

/** A content link of a record: where it sits, and the parents whose completion computes it. */
interface SlowLink {
  readonly group: number;
  readonly position: number;
  readonly parents: readonly number[];
}

/** BuildKit's scheduler reduced to what decides loaded / run, over a build's records. */
class SolverModel {
  readonly #graph: CacheGraph;
  readonly #store: CacheKeyStore<CacheSource>;
  readonly #presence: BlobPresence;
  readonly #keys: readonly CacheKey[];
  readonly #state = new Map<number, State>();
  readonly #loaded = new Map<number, Loaded>();
  /** Records completed (loaded or run): their content-based keys are known. */
  readonly #complete = new Set<number>();
  /** Keys as far as known now (content keys of incomplete parents left out), by record. */
  #partial = new Map<number, CacheKey>();
  #layerOf: Map<number, string> | undefined;
  readonly #slow: readonly SlowLink[][];
  readonly #anySlow: boolean;

  constructor(graph: CacheGraph, store: CacheKeyStore<CacheSource>, presence: BlobPresence) {
    this.#graph = graph;
    this.#store = store;
    this.#presence = presence;
    this.#keys = recordKeys(graph);
    this.#slow = SolverModel.slowLinks(graph.config.records);
    this.#anySlow = this.#slow.some((links) => links.length > 0);
  }

  get records(): readonly CacheRecord[] {
    return this.#graph.config.records;
  }

  /** Final steps: records with inputs that no record links from. */
  finals(): number[] {
    return finalRecords(this.records);
  }

  async run(): Promise<void> {
    for (const index of this.finals()) await this.#completeRecord(index);
    // Steps nothing asked for: ancestors of loaded steps only.
    this.records.forEach((record, index) => {
      if (record.inputs.length > 0 && !this.#state.has(index)) this.#state.set(index, 'skipped');
    });
  }

  /** The step asked to complete: loaded when its key (as known so far) reaches a usable result. */
  async #completeRecord(index: number): Promise<void> {
    if (this.#complete.has(index)) return;
    const record = this.records[index] as CacheRecord;
    if (record.inputs.length === 0) {
      this.#markComplete(index);
      return;
    }
    if (await this.#tryLoad(index)) return;
    // Content-based keys need the parent they are computed from: complete those parents.
    const slow = this.#slowParents(index);
    if (slow.length > 0) {
      for (const parent of slow) await this.#completeRecord(parent);
      if (await this.#tryLoad(index)) return;
    }
    for (const group of record.inputs) {
      for (const input of group) await this.#completeRecord(input.link);
    }
    // Completed parents bring their full keys: BuildKit probes them once more before running.
    if (await this.#tryLoad(index)) return;
    this.#state.set(index, 'run');
    this.#markComplete(index);
  }

  async #tryLoad(index: number): Promise<boolean> {
    const items = this.#store.match(this.#partialKey(index));
    const item = await this.#presence.loadable(items);
    if (!item) return false;
    this.#state.set(index, 'loaded');
    this.#loaded.set(index, { item });
    this.#markComplete(index);
    return true;
  }

  #markComplete(index: number): void {
    this.#complete.add(index);
    this.#partial = new Map();
  }

  /**
   * Parents whose completion gives this step content-based keys: in an input group holding a
   * step's definition key (a record with inputs, or a link with a selector), the links without
   * selector from records without inputs are content checksums of that parent's files.
   */
  #slowParents(index: number): number[] {
    const parents: number[] = [];
    for (const slow of this.#slow[index] ?? []) {
      for (const parent of slow.parents) if (!this.#complete.has(parent)) parents.push(parent);
    }
    return parents;
  }

  /** Per record, its content links: group, position in the group, and the parents they need. */
  static slowLinks(records: readonly CacheRecord[]): SlowLink[][] {
    const hasInputs = (link: number) => (records[link] as CacheRecord).inputs.length > 0;
    return records.map((record) =>
      record.inputs.flatMap((group, g) => {
        const isContent = group.map((input) => !input.selector && !hasInputs(input.link));
        if (isContent.every(Boolean)) return [];
        const parents = group.filter((_, p) => !isContent[p]).map((input) => input.link);
        return group.flatMap((_, p) => (isContent[p] ? [{ group: g, position: p, parents }] : []));
      }),
    );
  }

  /** A link whose content key is not known yet: its parents have not completed. */
  #pending(index: number, group: number, position: number): boolean {
    const slow = this.#slow[index]?.find((s) => s.group === group && s.position === position);
    return slow !== undefined && !slow.parents.every((parent) => this.#complete.has(parent));
  }

  /** The key of a record as the solver knows it now: content keys of incomplete parents left out. */
  #partialKey(root: number): CacheKey {
    if (!this.#anySlow) return this.#keys[root] as CacheKey;
    const known = (index: number) => this.#complete.has(index) || this.#partial.has(index);
    // Post-order without recursion: builds may be thousands of steps deep.
    const stack = [root];
    while (stack.length > 0) {
      const index = stack[stack.length - 1] as number;
      if (known(index)) {
        stack.pop();
        continue;
      }
      const record = this.records[index] as CacheRecord;
      const parents = record.inputs.flatMap((group, g) =>
        group.filter((input, p) => !known(input.link) && !this.#pending(index, g, p)),
      );
      if (parents.length > 0) {
        stack.push(...parents.map((input) => input.link));
        continue;
      }
      stack.pop();
      this.#partial.set(index, this.#assemble(index));
    }
    return this.#current(root);
  }

  #current(index: number): CacheKey {
    return this.#complete.has(index)
      ? (this.#keys[index] as CacheKey)
      : (this.#partial.get(index) as CacheKey);
  }

  /** A record's key from its parents' current keys, its pending content links left out. */
  #assemble(index: number): CacheKey {
    const full = this.#keys[index] as CacheKey;
    const record = this.records[index] as CacheRecord;
    let changed = false;
    const inputs = record.inputs.map((group, g) => {
      const kept: CacheKeyInput[] = [];
      group.forEach((input, p) => {
        if (this.#pending(index, g, p)) {
          changed = true;
          return;
        }
        const alternative = full.inputs[g]?.[p] as CacheKeyInput;
        const key = this.#current(input.link);
        if (key === alternative.key) kept.push(alternative);
        else {
          changed = true;
          kept.push({ ...alternative, key });
        }
      });
      return kept;
    });
    return changed ? { digest: full.digest, inputs } : full;
  }

  async explain(
    history: ReadonlyMap<string, string>,
  ): Promise<Pick<CacheExplanation, 'steps' | 'cached' | 'total' | 'finalCached' | 'sources'>> {
    const order = buildOrder(this.records, this.finals());
    const steps: ExplainedStep[] = [];
    const sources: ExplainedSource[] = [];
    for (const index of order) {
      const record = this.records[index] as CacheRecord;
      const digest = record.digest;
      if (record.inputs.length === 0) {
        const found = this.#store.match(this.#keys[index] as CacheKey).length > 0;
        sources.push({ digest, record: index, found });
        continue;
      }
      steps.push(await this.#step(index, history));
    }
    const finals = new Set(this.finals());
    return {
      steps,
      cached: steps.filter((step) => step.cached).length,
      total: steps.length,
      finalCached: steps.filter((step) => finals.has(step.record)).every((step) => step.cached),
      sources,
    };
  }

  async #step(index: number, history: ReadonlyMap<string, string>): Promise<ExplainedStep> {
    const record = this.records[index] as CacheRecord;
    const inputs = record.inputs.flatMap((group, input) =>
      group.map((link): StepInput => {
        const from = (this.records[link.link] as CacheRecord).digest;
        return link.selector ? { input, from, selector: link.selector } : { input, from };
      }),
    );
    this.#layerOf ??= stepLayers(this.#graph);
    const layer = this.#layerOf.get(index);
    const createdBy = layer === undefined ? undefined : history.get(layer);
    const facts = {
      record: index,
      inputs,
      ...(layer === undefined ? {} : { layer }),
      ...(createdBy === undefined ? {} : { createdBy }),
    };
    const { digest } = record;
    const state = this.#state.get(index);
    if (state === 'loaded') {
      const { item } = this.#loaded.get(index) as Loaded;
      const createdAt = item.result?.createdAt as string;
      return {
        digest,
        cached: true,
        reason: `loaded from ${item.source.name} (result of ${createdAt})`,
        code: 'loaded',
        ...facts,
        source: item.source.name,
        createdAt,
      };
    }
    if (state === 'skipped') {
      const reason = 'not needed: a later step is loaded from the caches';
      return { digest, cached: true, reason, code: 'skipped', ...facts };
    }
    const { code, reason, missingBlobs } = await this.#whyRuns(index);
    return {
      digest,
      cached: false,
      reason,
      code,
      ...facts,
      ...(missingBlobs ? { missingBlobs } : {}),
    };
  }

  /** Why a step that runs found no usable result (its full key: every parent completed). */
  async #whyRuns(
    index: number,
  ): Promise<{ code: StepCode; reason: string; missingBlobs?: string[] }> {
    const key = this.#keys[index] as CacheKey;
    const items = this.#store.match(key);
    if (items.length > 0) {
      const withResult = items.filter((item) => item.result !== undefined);
      if (withResult.length === 0) {
        const dropped = items.some((item) => hasResultInConfig(item));
        if (dropped) {
          return {
            code: 'blobs-missing',
            reason:
              'the caches have this step, but its results load blobs their manifests do not list',
          };
        }
        return {
          code: 'no-result',
          reason: 'the caches have this step but keep no result for it',
        };
      }
      const missing = new Set<string>();
      for (const item of withResult) {
        for (const blob of await this.#presence.missing(item)) missing.add(blob);
      }
      return {
        code: 'blobs-missing',
        reason: 'the caches have this step, but blobs of its results are missing',
        missingBlobs: [...missing],
      };
    }
    const digest = key.digest;
    if (this.#store.sources.length === 0) {
      return { code: 'no-record', reason: 'no cache is imported' };
    }
    if (this.#store.withDigest(digest).length === 0) {
      return {
        code: 'no-record',
        reason: 'no cache has a record for this step (the step itself differs)',
      };
    }
    const record = this.records[index] as CacheRecord;
    for (let input = 0; input < key.inputs.length; input++) {
      if (this.#store.matchInput(key, input).length > 0) continue;
      const group = record.inputs[input] as CacheRecord['inputs'][number];
      const alternatives = key.inputs[input] as readonly CacheKeyInput[];
      // A parent in the caches that links to this step's digest with another selector.
      for (let a = 0; a < alternatives.length; a++) {
        const alternative = alternatives[a] as CacheKeyInput;
        for (const from of this.#store.match(alternative.key)) {
          const selectors = this.#store.selectorsFrom(from, input, digest);
          if (selectors.length > 0) {
            return {
              code: 'content-changed',
              reason: `input ${input}: the caches link its parent to this step with selector ${selectors.map(show).join(', ')}, not ${show(alternative.selector ?? '')} (content changed)`,
            };
          }
        }
      }
      const absent = group.filter((_, a) => {
        const alternative = alternatives[a] as CacheKeyInput;
        return this.#store.match(alternative.key).length === 0;
      });
      const content = absent.find(
        (link) => (this.records[link.link] as CacheRecord).inputs.length === 0,
      );
      const parentStep = absent.find(
        (link) => (this.records[link.link] as CacheRecord).inputs.length > 0,
      );
      if (absent.length === group.length && content && !parentStep) {
        const from = (this.records[content.link] as CacheRecord).digest;
        return {
          code: 'content-changed',
          reason: `input ${input}: it comes from ${from}, a content checksum or source no cache has (the files or image it reads changed)`,
        };
      }
      if (absent.length === group.length && parentStep) {
        const from = (this.records[parentStep.link] as CacheRecord).digest;
        const contentToo = content ? ' and its content changed' : '';
        return {
          code: 'parent-runs',
          reason: `input ${input}: its parent ${from} is not in the caches and runs${contentToo}`,
        };
      }
      return {
        code: 'not-linked',
        reason: `input ${input}: its parent is in the caches, but not linked to this step (steps moved or inserted)`,
      };
    }
    return {
      code: 'not-linked',
      reason: 'each input reaches records of this step, but no one record is reached by all',
    };
  }
}

/** True when the record has results in the config as written (before unlisted blobs were dropped). */
function hasResultInConfig(item: CacheItem<CacheSource>): boolean {
  const record = item.source.config.records[item.record];
  return record !== undefined && (record.results.length > 0 || record.chains.length > 0);
}

function show(selector: string): string {
  return selector === '' ? '(none)' : selector;
}
