import { RegistryStore } from './registry-store.ts';

/**
 * Blobs of one repository on one registry.
 * @deprecated Use {@link RegistryStore}: the same reads, and the writes of a copy.
 */
export const RegistryProvider = RegistryStore;
/** @deprecated Use {@link RegistryStore}. */
export type RegistryProvider = RegistryStore;
