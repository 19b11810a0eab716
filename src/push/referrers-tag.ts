import { RegistryError, type Repository, referrersTag } from '../registry/index.ts';
import { type Descriptor, OCI_INDEX } from '../registry/oci.ts';

/** The fields of a manifest that the referrers index needs. */
interface SubjectManifest {
  subject?: Descriptor;
  artifactType?: string;
  config?: { mediaType?: string };
  annotations?: Record<string, string>;
}

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
  const manifest = JSON.parse(bytes.toString('utf8')) as SubjectManifest;
  const subject = manifest.subject;
  if (!subject) return;
  const tag = referrersTag(subject.digest);
  const existing = await readIndex(repository, tag, signal);
  if (existing.some((entry) => entry.digest === descriptor.digest)) return;
  const artifactType = manifest.artifactType ?? manifest.config?.mediaType;
  const entry: Descriptor = {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(artifactType ? { artifactType } : {}),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
  const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...existing, entry] };
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
    const index = JSON.parse(bytes.toString('utf8')) as { manifests?: Descriptor[] };
    return Array.isArray(index.manifests) ? index.manifests : [];
  } catch (error) {
    if (error instanceof RegistryError && error.status === 404) return [];
    throw error;
  }
}
