import { LayoutStore } from '../layout/index.ts';
import type { Reference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import { LayoutTarget } from './layout-target.ts';
import { RegistryTarget } from './registry-target.ts';
import type { Target } from './target.ts';

/** The target a destination reference names (a layout directory is created when missing). */
export async function openTarget(reference: Reference, client: RegistryClient): Promise<Target> {
  if (reference.kind === 'layout') {
    return new LayoutTarget(await LayoutStore.open(reference.path, { create: true }));
  }
  return new RegistryTarget(client.repository(reference.registry, reference.repository));
}
