import test from 'ava';
import fc from 'fast-check';
import { type Descriptor, IMAGE_NAME, REF_NAME } from '../../src/layout/index.ts';
import { findTag, listTags, withoutTag, withTag } from '../../src/layout/tags.ts';

const digests = ['a', 'b', 'c'].map((c) => `sha256:${c.repeat(64)}`);
const descriptor = (digest: string): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest,
  size: 1,
});

const operation = fc.oneof(
  fc.record({
    put: fc.constantFrom('v1', 'v2', 'latest'),
    digest: fc.constantFrom(...digests),
  }),
  fc.record({ remove: fc.constantFrom('v1', 'v2', 'latest') }),
);

test('tag updates behave like a map from tag to digest', (t) => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 30 }), (operations) => {
      let manifests: Descriptor[] = [];
      const model = new Map<string, string>();
      for (const op of operations) {
        if ('put' in op) {
          manifests = withTag(manifests, op.put, descriptor(op.digest));
          model.set(op.put, op.digest);
        } else {
          manifests = withoutTag(manifests, op.remove);
          model.delete(op.remove);
        }
      }
      for (const tag of ['v1', 'v2', 'latest']) {
        if (findTag(manifests, tag)?.digest !== model.get(tag)) return false;
      }
      return (
        listTags(manifests).sort().join() === [...model.keys()].sort().join() &&
        manifests.length === model.size
      );
    }),
  );
  t.pass();
});

test('a containerd image name shadows an equal ref.name until it is removed', (t) => {
  const [a = '', b = ''] = digests;
  const manifests: Descriptor[] = [
    { ...descriptor(a), annotations: { [REF_NAME]: 'app' } },
    { ...descriptor(b), annotations: { [IMAGE_NAME]: 'app' } },
  ];
  t.is(findTag(manifests, 'app')?.digest, b);
  t.deepEqual(withoutTag(manifests, 'app'), []);
});
