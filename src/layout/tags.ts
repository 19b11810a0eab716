import { InvalidTagError } from './errors.ts';
import { type Descriptor, IMAGE_NAME, REF_NAME } from './types.ts';

/** OCI image-layout `ref.name` grammar: `/`-separated alphanumeric runs joined by separators. */
const COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const TAG_PATTERN = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/** Throw {@link InvalidTagError} unless `tag` is a valid `org.opencontainers.image.ref.name`. */
export function assertTag(tag: string): void {
  if (typeof tag !== 'string' || !TAG_PATTERN.test(tag)) throw new InvalidTagError(String(tag));
}

/**
 * The entry `tag` names, in BuildKit's lookup order: first an `io.containerd.image.name`
 * equal to `tag`, then an `org.opencontainers.image.ref.name`.
 */
export function findTag(manifests: readonly Descriptor[], tag: string): Descriptor | undefined {
  return (
    manifests.find((m) => m.annotations?.[IMAGE_NAME] === tag) ??
    manifests.find((m) => m.annotations?.[REF_NAME] === tag)
  );
}

/** Every name the entries carry (both annotations), without duplicates, in index order. */
export function listTags(manifests: readonly Descriptor[]): string[] {
  const names = new Set<string>();
  for (const m of manifests) {
    for (const key of [IMAGE_NAME, REF_NAME]) {
      const name = m.annotations?.[key];
      if (name !== undefined) names.add(name);
    }
  }
  return [...names];
}

/**
 * `manifests` without the name `tag`: the matching annotation is removed from each entry, and an
 * entry left without any name is dropped (it would otherwise keep its blobs from GC forever).
 */
export function withoutTag(manifests: readonly Descriptor[], tag: string): Descriptor[] {
  const result: Descriptor[] = [];
  for (const m of manifests) {
    const annotations = m.annotations;
    if (annotations?.[IMAGE_NAME] !== tag && annotations?.[REF_NAME] !== tag) {
      result.push(m);
      continue;
    }
    const kept = Object.fromEntries(
      Object.entries(annotations).filter(([key, value]) => !(isNameKey(key) && value === tag)),
    );
    if (kept[IMAGE_NAME] === undefined && kept[REF_NAME] === undefined) continue;
    result.push({ ...m, annotations: kept });
  }
  return result;
}

/**
 * `manifests` with `tag` pointing at `desc` alone: the old holder of the name loses it, an
 * untagged entry for the same digest is folded into the new one, which is appended last.
 * Name annotations `desc` brings from elsewhere are dropped.
 */
export function withTag(
  manifests: readonly Descriptor[],
  tag: string,
  desc: Descriptor,
): Descriptor[] {
  const others = withoutTag(manifests, tag).filter((m) => m.digest !== desc.digest || isNamed(m));
  const annotations = { ...withoutNames(desc.annotations ?? {}), [REF_NAME]: tag };
  return [...others, { ...desc, annotations }];
}

function isNamed(m: Descriptor): boolean {
  return m.annotations?.[IMAGE_NAME] !== undefined || m.annotations?.[REF_NAME] !== undefined;
}

function isNameKey(key: string): boolean {
  return key === IMAGE_NAME || key === REF_NAME;
}

function withoutNames(annotations: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations).filter(([key]) => !isNameKey(key)));
}

/** The `index.json` entry of a manifest: only what identifies it (platform kept, for indexes). */
export function indexEntry(descriptor: Descriptor): Descriptor {
  const { mediaType, digest, size, platform } = descriptor;
  return platform ? { mediaType, digest, size, platform } : { mediaType, digest, size };
}
