/**
 * Like `Promise.all`, but rejects only once every promise has settled, with the first rejection
 * in order: when one transfer fails, the caller is not told while its siblings still run.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failure = results.find((result) => result.status === 'rejected');
  if (failure) throw failure.reason;
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}
