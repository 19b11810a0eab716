export { InvalidReferenceError } from './errors.ts';
export { apiHost, DOCKER_HUB, isLoopbackRegistry, normalizeRegistry } from './host.ts';
export {
  familiarName,
  formatReference,
  parseReference,
  parseRegistryReference,
  withDigest,
  withTag,
} from './reference.ts';
export type { LayoutReference, Reference, RegistryReference } from './types.ts';
