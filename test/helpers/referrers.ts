import { Readable } from 'node:stream';
import type { RegistryTarget } from '../../src/copy/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { OCI_EMPTY, OCI_MANIFEST } from '../../src/oci/index.ts';

/** Artifact type of the artifacts {@link pushReferrer} makes by default. */
export const SIGNATURE_TYPE = 'application/vnd.example.signature.v1';

/**
 * Push a small artifact (empty config, one text layer) whose subject is `subject` and return its
 * digest. Through a {@link RegistryTarget}, so a registry without the referrers API gets the
 * fallback tag index.
 */
export async function pushReferrer(
  target: RegistryTarget,
  subject: { digest: string; size: number; mediaType?: string },
  options: { artifactType?: string; payload?: string } = {},
): Promise<string> {
  const config = Buffer.from('{}');
  const payload = Buffer.from(options.payload ?? 'signed: ociferry test');
  for (const blob of [config, payload]) {
    await target.writeBlob(
      { mediaType: 'application/octet-stream', digest: digestBytes(blob), size: blob.length },
      async () => Readable.from([blob]),
    );
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: options.artifactType ?? SIGNATURE_TYPE,
      config: { mediaType: OCI_EMPTY, digest: digestBytes(config), size: config.length },
      layers: [{ mediaType: 'text/plain', digest: digestBytes(payload), size: payload.length }],
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.size },
    }),
  );
  const descriptor = {
    mediaType: OCI_MANIFEST,
    digest: digestBytes(manifest),
    size: manifest.length,
  };
  await target.putManifest(descriptor, manifest);
  return descriptor.digest;
}
