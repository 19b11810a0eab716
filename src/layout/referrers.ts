import { LayoutInvalidError } from './errors.ts';
import type { Descriptor } from './types.ts';
import { isObject, parseDescriptor, parseJson } from './validate.ts';

/** A manifest that names a subject: the subject, and the manifest as a referrers list shows it. */
export interface Referrer {
  readonly subject: Descriptor;
  /** mediaType, digest and size, with the manifest's artifactType and annotations. */
  readonly descriptor: Descriptor;
}

/**
 * What the manifest `bytes` (described by `descriptor`) is as a referrer: its subject, and the
 * descriptor the referrers API lists for it (`artifactType` from the manifest, else its config's
 * media type; the manifest's annotations). Undefined when it has no subject.
 */
export function asReferrer(descriptor: Descriptor, bytes: Buffer): Referrer | undefined {
  if (!bytes.includes('"subject"')) return undefined;
  const where = `manifest ${descriptor.digest}`;
  const manifest = parseJson(bytes.toString('utf8'), where);
  if (!isObject(manifest)) throw new LayoutInvalidError(where, 'not a JSON object');
  if (manifest.subject === undefined) return undefined;
  const subject = parseDescriptor(manifest.subject, where, 'subject');
  const config = isObject(manifest.config) ? manifest.config : undefined;
  const artifactType = [manifest.artifactType, config?.mediaType].find(
    (value): value is string => typeof value === 'string',
  );
  const annotations = isObject(manifest.annotations) ? manifest.annotations : undefined;
  return {
    subject,
    descriptor: {
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      ...(artifactType === undefined ? {} : { artifactType }),
      ...(annotations === undefined ? {} : { annotations: annotations as Record<string, string> }),
    },
  };
}
