import type { CacheRecord } from './config.ts';

/** Final steps of a cache: records with inputs that no record links from, in record order. */
export function finalRecords(records: readonly CacheRecord[]): number[] {
  const used = new Uint8Array(records.length);
  for (const record of records) {
    for (const group of record.inputs) for (const input of group) used[input.link] = 1;
  }
  const finals: number[] = [];
  records.forEach((record, index) => {
    if (record.inputs.length > 0 && used[index] === 0) finals.push(index);
  });
  return finals;
}

/** Records in build order: depth-first from the final steps, inputs in order, each once. */
export function buildOrder(records: readonly CacheRecord[], finals: readonly number[]): number[] {
  const order: number[] = [];
  const seen = new Uint8Array(records.length);
  const visit = (root: number) => {
    const stack: Array<{ index: number; next: number; links: number[] }> = [];
    const open = (index: number) => {
      seen[index] = 1;
      const links = (records[index] as CacheRecord).inputs.flatMap((group) =>
        group.map((input) => input.link),
      );
      stack.push({ index, next: 0, links });
    };
    if (seen[root]) return;
    open(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as (typeof stack)[number];
      if (top.next === top.links.length) {
        order.push(top.index);
        stack.pop();
        continue;
      }
      const link = top.links[top.next++] as number;
      if (!seen[link]) open(link);
    }
  };
  for (const final of finals) visit(final);
  for (let index = 0; index < records.length; index++) visit(index);
  return order;
}
