import { isObject } from './validate.ts';

/** `error.code` of a Node system error (`ENOENT`, `EEXIST`, ...), else undefined. */
export function errorCode(error: unknown): string | undefined {
  return isObject(error) && typeof error.code === 'string' ? error.code : undefined;
}
