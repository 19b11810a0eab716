import { LayoutStore } from '../layout/index.ts';
import { parseReference, type Reference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import { type ContextOptions, contextOf } from './ociferry-context.ts';
import { RegistryStore } from './registry-store.ts';
import type { Store } from './store.ts';

/** Options of {@link openStore}. */
export interface OpenStoreOptions extends ContextOptions {
  /** Registry client of a registry store; default the context's. */
  client?: RegistryClient;
  /** Create a layout directory that is missing, as a copy's destination does; default false. */
  create?: boolean;
}

/** Opens the store of one kind of reference. */
type Opener<K extends Reference['kind']> = (
  reference: Extract<Reference, { kind: K }>,
  options: OpenStoreOptions,
) => Promise<Store>;

/** One line per backend: a new backend is a new store file and a line here. */
const OPENERS: { readonly [K in Reference['kind']]: Opener<K> } = {
  registry: async (ref, options) =>
    new RegistryStore(
      (options.client ?? contextOf(options).client).repository(ref.registry, ref.repository),
    ),
  layout: (ref, options) => LayoutStore.open(ref.path, { create: options.create ?? false }),
};

/**
 * The store a reference names: its registry repository, or its OCI layout directory (checked,
 * or created with `create`). Its tag and digest are not looked at: pass them to the store's
 * `resolve` or `fetchReference`.
 */
export function openStore(
  reference: string | Reference,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  return (OPENERS[ref.kind] as Opener<typeof ref.kind>)(ref, options);
}
