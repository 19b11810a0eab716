import test from 'ava';
import { parseCacheConfig } from '../../src/cache/config-parse.ts';
import { buildImportDocument, type NamespaceRows } from '../../src/service/import-document.ts';

const key = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

/** Rows of records 1..count and links `[source, target, input]` (source 0: a record not held). */
function rows(count: number, links: [number, number, number][]): NamespaceRows {
  return {
    records: Array.from({ length: count }, (_, i) => key(i + 1)),
    sources: links.map(([s]) => key(s)),
    targets: links.map(([, t]) => key(t)),
    inputs: links.map(([, , input]) => input),
    selectors: links.map(() => ''),
    results: [],
    blobs: [],
  };
}

async function served(input: NamespaceRows) {
  const bytes = buildImportDocument(input);
  const config = JSON.parse(bytes.toString()) as {
    records: { digest: string; inputs?: { link: number }[][] }[];
  };
  await parseCacheConfig(bytes); // what is served is a config ociferry (and BuildKit) imports
  const at = (n: number) => config.records.findIndex((r) => r.digest === key(n));
  const inputs = (n: number) =>
    config.records[at(n)]?.inputs?.map((group) =>
      group.map(({ link }) => config.records[link]?.digest),
    );
  return { digests: config.records.map((r) => r.digest), inputs };
}

test('a link from a record the namespace does not hold is no link; a kept link at its input keeps the record', async (t) => {
  const { digests, inputs } = await served(
    rows(3, [
      [1, 2, 0],
      [0, 2, 0],
      [0, 3, 0],
    ]),
  );
  t.deepEqual(digests, [key(1), key(2)]);
  t.deepEqual(inputs(2), [[key(1)]]);
  const allHeld = await served(
    rows(2, [
      [1, 2, 0],
      [0, 2, 0],
    ]),
  );
  t.deepEqual(allHeld.inputs(2), [[key(1)]], 'when no record is left out either');
});

test('a chain below a record with an empty input group is left out to its end, whatever the order of the digests', async (t) => {
  // 5 has nothing at input 0; 4 -> 3 -> 2 hang from it alone; 1 is a root.
  const { digests } = await served(
    rows(5, [
      [1, 5, 1],
      [5, 4, 0],
      [4, 3, 0],
      [3, 2, 0],
    ]),
  );
  t.deepEqual(digests, [key(1)]);
});
