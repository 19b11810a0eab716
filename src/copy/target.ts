import type { Readable } from 'node:stream';
import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { MountResult, Repository, UploadSession } from '../registry/index.ts';
import type { RegistryLocation } from '../remote/provider.ts';
import { RegistryStore } from '../remote/registry-store.ts';
import type { SignalOption, Store } from '../remote/store.ts';

export type { SignalOption } from '../remote/store.ts';

/**
 * Where a copy writes, in the names of the first copy engine.
 * @deprecated The copy engine writes to a `Store` (see `openStore`): `exists`, `push`,
 * `pushManifest`, `tag`, and `mount` where the store is a `Mounter`.
 */
export interface Target {
  readonly description: string;
  readonly location?: RegistryLocation;
  readonly checksReferences: boolean;
  hasBlob(descriptor: Descriptor, options?: SignalOption): Promise<boolean>;
  mountBlob?(descriptor: Descriptor, from: string, options?: SignalOption): Promise<MountResult>;
  cancelUpload?(session: UploadSession): Promise<void>;
  writeBlob(
    descriptor: Descriptor,
    open: () => Promise<Readable>,
    options?: SignalOption & { session?: UploadSession },
  ): Promise<void>;
  hasManifest(descriptor: Descriptor, options?: SignalOption): Promise<boolean>;
  putManifest(descriptor: Descriptor, bytes: Buffer, options?: SignalOption): Promise<void>;
  tag(descriptor: Descriptor, bytes: Buffer, tag: string, options?: SignalOption): Promise<void>;
  keepUntagged(descriptor: Descriptor, options?: SignalOption): Promise<void>;
}

/** A {@link Target} over a store: the old names of its verbs. */
class StoreTarget implements Target {
  readonly #store: Store;
  readonly description: string;
  readonly location?: RegistryLocation;
  readonly checksReferences: boolean;

  constructor(store: Store) {
    this.#store = store;
    this.description = store.description;
    if (store.location) this.location = store.location;
    this.checksReferences = store.checksReferences;
  }

  hasBlob(descriptor: Descriptor, options?: SignalOption): Promise<boolean> {
    return this.#store.exists(descriptor, options);
  }

  writeBlob(
    descriptor: Descriptor,
    open: () => Promise<Readable>,
    options?: SignalOption & { session?: UploadSession },
  ): Promise<void> {
    return this.#store.push(descriptor, open, options);
  }

  hasManifest(descriptor: Descriptor, options?: SignalOption): Promise<boolean> {
    return this.#store.exists(descriptor, options);
  }

  putManifest(descriptor: Descriptor, bytes: Buffer, options?: SignalOption): Promise<void> {
    return this.#store.pushManifest(descriptor, bytes, options);
  }

  tag(descriptor: Descriptor, bytes: Buffer, tag: string, options?: SignalOption): Promise<void> {
    return this.#store.tag(descriptor, bytes, tag, options);
  }

  keepUntagged(descriptor: Descriptor, options?: SignalOption): Promise<void> {
    return this.#store.keepUntagged(descriptor, options);
  }
}

/**
 * A registry repository as a copy target.
 * @deprecated Use `RegistryStore` (or `openStore('host/repo')`).
 */
export class RegistryTarget extends StoreTarget {
  readonly repository: Repository;
  readonly #store: RegistryStore;

  constructor(repository: Repository) {
    const store = new RegistryStore(repository);
    super(store);
    this.#store = store;
    this.repository = repository;
  }

  mountBlob(descriptor: Descriptor, from: string, options?: SignalOption): Promise<MountResult> {
    return this.#store.mount(descriptor, from, options);
  }

  cancelUpload(session: UploadSession): Promise<void> {
    return this.#store.cancelMount(session);
  }
}

/**
 * An OCI layout directory as a copy target.
 * @deprecated A `LayoutStore` is a store itself: pass it where a destination is taken.
 */
export class LayoutTarget extends StoreTarget {
  readonly store: LayoutStore;

  constructor(store: LayoutStore) {
    super(store);
    this.store = store;
  }
}
