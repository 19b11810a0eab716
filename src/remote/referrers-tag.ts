import { asReferrer } from '../layout/index.ts';
import { type Descriptor, decodeManifest, OCI_INDEX } from '../oci/index.ts';
import { RegistryError, type Repository, referrersTag } from '../registry/index.ts';

/**
 * After pushing a manifest that has a `subject` to a registry that did not index it (no
 * `OCI-Subject` in the answer), add it to the referrers fallback index under the `<alg>-<hex>`
 * tag of the subject, as distribution-spec v1.1 asks of clients. No duplicate entries.
 */
export async function addToReferrersTag(
  repository: Repository,
  descriptor: Descriptor,
  bytes: Buffer,
  signal?: AbortSignal,
): Promise<void> {
  const referrer = asReferrer(descriptor, bytes);
  if (!referrer) return;
  const tag = referrersTag(referrer.subject.digest);
  const existing = await readIndex(repository, tag, signal);
  if (existing.some((entry) => entry.digest === descriptor.digest)) return;
  const manifests = [...existing, referrer.descriptor];
  const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
  await repository.putManifest(tag, Buffer.from(JSON.stringify(index)), OCI_INDEX, { signal });
}

/** Entries of the fallback index under `tag`, or none when the tag does not exist yet. */
async function readIndex(
  repository: Repository,
  tag: string,
  signal?: AbortSignal,
): Promise<Descriptor[]> {
  try {
    const { bytes } = await repository.getManifest(tag, { accept: [OCI_INDEX], signal });
    const where = `referrers index ${repository.registry}/${repository.name}:${tag}`;
    const decoded = decodeManifest(bytes, OCI_INDEX, where);
    return decoded.kind === 'index' ? [...decoded.index.manifests] : [];
  } catch (error) {
    if (error instanceof RegistryError && error.status === 404) return [];
    throw error;
  }
}
