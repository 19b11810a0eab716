import { OciferryError } from '../errors.ts';

/** A string that should have been a digest (`alg:hex`) is not one we accept. */
export class InvalidDigestError extends OciferryError {
  readonly value: string;

  constructor(value: string, reason: string) {
    super('DIGEST_INVALID', `invalid digest ${JSON.stringify(truncate(value))}: ${reason}`);
    this.value = value;
  }
}

/** Bytes did not hash to the digest they were announced with. */
export class DigestMismatchError extends OciferryError {
  readonly expected: string;
  readonly actual: string;
  readonly source: string | undefined;

  constructor(args: { expected: string; actual: string; source?: string }) {
    const where = args.source ? ` from ${args.source}` : '';
    super(
      'DIGEST_MISMATCH',
      `content${where} has digest ${args.actual}, expected ${args.expected}`,
    );
    this.expected = args.expected;
    this.actual = args.actual;
    this.source = args.source;
  }
}

/** A stream carried more or fewer bytes than its descriptor announced. */
export class SizeMismatchError extends OciferryError {
  readonly expected: number;
  readonly actual: number;

  constructor(args: { expected: number; actual: number; digest: string; source?: string }) {
    const where = args.source ? ` from ${args.source}` : '';
    super(
      'SIZE_MISMATCH',
      `${args.digest}${where}: got ${args.actual} bytes, expected ${args.expected}`,
    );
    this.expected = args.expected;
    this.actual = args.actual;
  }
}

function truncate(value: string): string {
  return value.length > 100 ? `${value.slice(0, 100)}...` : value;
}
